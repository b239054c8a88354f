"""The bundled default model: it loads, carries its band and calibrations, is today's default recipe, and predicts."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from hr_lstm.cli import main as cli_main
from hr_lstm.inference.predict import predict_files
from hr_lstm.models.bundled import BUNDLED_CHECKPOINT, BUNDLED_NOTE, RECIPE_COMMAND, recipe
from hr_lstm.paths import EXAMPLE_RUNNER
from hr_lstm.training.config import RunConfig
from hr_lstm.training.trained import TrainedModel

# What the bundled model does on the example runner's 26 real runs (a person it does not know): measured at
# build time 20.3 BPM mean MAE, 10.9 after minute 5 with the warm start. A margin for other CPUs' arithmetic.
EXAMPLE_MAE_BPM, EXAMPLE_WARM_AFTER_5_BPM = 22.0, 12.5


@pytest.fixture(scope="module")
def bundled() -> TrainedModel:
    return TrainedModel.load(BUNDLED_CHECKPOINT)


def test_it_is_small_and_carries_its_band_and_calibrations(bundled):
    assert BUNDLED_CHECKPOINT.stat().st_size < 1_000_000
    assert bundled.config.model.model == "lstm_embeddings" and len(bundled.user_ids) > 200
    assert bundled.interval is not None and bundled.interval_unknown is not None
    assert bundled.interval_unknown.n_athletes > 200 and bundled.interval_unknown.level_scale_bpm > 5
    for k in (2, 5):
        assert bundled.warm_start_prior(k) is not None and bundled.warm_start_unknown(k) is not None


def test_its_recorded_recipe_is_todays_default(bundled):
    """A change of the default recipe fails here until `make model` rebuilds the file."""
    assert bundled.metrics["command"] == RECIPE_COMMAND
    assert recipe(bundled.payload["config"]) == recipe(RunConfig().as_dict())
    assert bundled.payload["data_fingerprint"] and bundled.metrics["hr_lstm_version"]


@pytest.mark.skipif(not EXAMPLE_RUNNER.is_dir(), reason="examples/runner_a not present")
def test_it_predicts_the_example_runner_within_the_stated_error(tmp_path):
    files = sorted(EXAMPLE_RUNNER.glob("*.gpx.gz"))
    preds, _ = predict_files(BUNDLED_CHECKPOINT, files, write=False, report=lambda *a: None, warm_start_min=5)
    assert len(preds) == len(files)
    assert all(p.user.endswith("band for an athlete the model does not know") for p in preds)
    assert np.mean([p.mae for p in preds]) < EXAMPLE_MAE_BPM
    assert np.mean([p.warm_start_mae_after_k for p in preds]) < EXAMPLE_WARM_AFTER_5_BPM


@pytest.mark.skipif(not EXAMPLE_RUNNER.is_dir(), reason="examples/runner_a not present")
def test_predict_without_a_checkpoint_says_it_uses_the_bundled_model(tmp_path):
    run = sorted(EXAMPLE_RUNNER.glob("*.gpx.gz"))[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(["predict", str(run), "--out", str(tmp_path / "p")]) == 0
    assert out.getvalue().splitlines()[0] == BUNDLED_NOTE
    assert len(list((tmp_path / "p").glob("*_prediction.csv"))) == 1
