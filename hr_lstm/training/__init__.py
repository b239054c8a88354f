"""The training layer: from a `RunConfig` to a trained, tested, saved model.

- `config`: `RunConfig` (the run's parts composed; `override` and `validate`), `TrainConfig`
- `prepare`: data -> tensors, every statistic fitted on the training split only
- `runtime`: devices, backend switches, CPU threads, the allocator
- `loop`: loss, optimiser, schedule, epochs, early stopping, resume
- `distributed`: torchrun / DistributedDataParallel helpers
- `run`: the whole recipe (`hr-lstm train`): prepare, fit, test, write
- `curves`: the training-curves figure written beside each checkpoint
- `trained`: `TrainedModel`, the one way from a checkpoint to predictions
"""
