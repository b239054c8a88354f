"""The default model that ships with the package, so a first prediction needs no training run.

`lstm_embeddings` trained by the default recipe on the default simulated set (300 athletes), with its 80%
band, the band and warm start for an athlete it does not know, and its warm-start calibration; about 270 KB,
loaded with `weights_only=True` like any other checkpoint. `make model` rebuilds it (RECIPE_COMMAND, which
the checkpoint records); `tests/test_bundled_model.py` fails when the default recipe changes and the file
was not rebuilt. It knows simulated athletes, not you: `hr-lstm personalize` fits it to a person's files
(docs/bundled_model.md).
"""

from __future__ import annotations

import json
from pathlib import Path

BUNDLED_CHECKPOINT = Path(__file__).with_name("bundled") / "lstm_embeddings_default.pt"
RECIPE_COMMAND = "hr-lstm train --seed 0 --threads 2 --device cpu --out checkpoints/bundled"
BUNDLED_NOTE = (
    "no --checkpoint: the bundled default model, trained on 300 simulated athletes; "
    "`hr-lstm personalize` to fit it to you"
)
# Settings that say where and how fast a run trained, not what it learned; and what training derives itself.
NOT_RECIPE = {
    "train": ("out_dir", "threads", "device", "resume"),
    "model": (
        "n_inputs",
        "n_users",
        "trained_users",
        "output_init_bpm",
        "output_scale_bpm",
        "time_step_column",
        "time_step_mean_s",
        "time_step_std_s",
    ),
}


def checkpoint_or_bundled(checkpoint, report=None) -> Path:
    """`checkpoint` when given; else the bundled model, said in one line through `report`."""
    if checkpoint:
        return Path(checkpoint)
    if report is not None:
        report(BUNDLED_NOTE)
    return BUNDLED_CHECKPOINT


def recipe(config: dict) -> dict:
    """A run configuration (`RunConfig.as_dict()`, or a checkpoint's) without NOT_RECIPE's settings, as JSON
    would hold it (tuples as lists), so a stored one and today's compare equal."""
    config = json.loads(json.dumps(config))
    return {
        part: {k: v for k, v in values.items() if k not in NOT_RECIPE.get(part, ())}
        if isinstance(values, dict)
        else values
        for part, values in config.items()
    }
