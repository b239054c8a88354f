"""The data layer: every way workouts come in, as one array shape (`WorkoutSet`).

- `fitrec`, `fitrec_batch`: read FitRec / Endomondo records (one at a time; many at once, fast)
- `ingest`: parse a FitRec-format file in parallel worker processes
- `cache`: parse once into an array cache beside the file, reload it later (`load_workouts`)
- `workouts`: `WorkoutSet` and sport families
- `filters`: sports, plausible heart rate, users with enough workouts
- `splits`: train / validation / test (per user in time, by workout, by user)
- `features`: model inputs, normalised with training-split statistics
- `source`: which file a run reads (the user's, or the simulated default)
- `recordings`: a person's FIT / GPX / TCX files -> FitRec-format records
- `simulate`: the embedded physiological simulator (download-free data with a known truth)

Imports nothing from the layers above (models, training, ...), and not torch.
"""
