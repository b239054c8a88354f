"""The inference layer: a trained model applied to a person's own recordings.

- `predict`: read a person's files, predict each workout, write CSV + PNG
- `personalize`: fit a new athlete's embedding row from their workouts
"""
