"""The models layer: what maps a workout's inputs to heart rate.

- `lstm`: `HRLSTM` and `HRLSTMWithEmbeddings` (the original project's two models), `predict_bpm`
- `kinetic`: `HRLSTMKinetic`, the LSTM's output passed through per-athlete heart-rate kinetics
- `baselines`: the references a sports scientist tries first (means, ridge, per-athlete kinetics)
- `warm_start`: the first k measured minutes of a workout correct the level of the rest
- `checkpoint`: save and load checkpoints that carry their own recipe (`weights_only=True`)
"""

from . import kinetic  # noqa: F401  (registers lstm_kinetic with build_model)
