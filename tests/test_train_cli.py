"""End to end through the command line: synth -> train -> evaluate, and the errors users see."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from hr_lstm.cli import main
from hr_lstm.models.checkpoint import load_checkpoint

TINY = ["--hidden_size", "32", "--num_layers", "1", "--batch_size", "8", "--lr", "0.01", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(sim_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ck")
    # The original project's experiment (basic LSTM, original inputs) and the default model (the default inputs).
    for model, features in (("lstm", ["--features", "original"]), ("lstm_embeddings", [])):
        args = [
            "train",
            "--model",
            model,
            "--epochs",
            "10",
            "--embedding_dim",
            "8",
            "--data",
            str(sim_data),
            "--out",
            str(out),
            *features,
            *TINY,
        ]
        assert main(args) == 0
    return out


@pytest.mark.parametrize("model", ["lstm", "lstm_embeddings"])
def test_training_writes_outputs_and_beats_the_mean_baseline(trained, model):
    names = {p.name for p in trained.iterdir()}
    assert {f"{model}_best.pt", f"{model}_training_curves.png", f"{model}_metrics.json"} <= names
    metrics = json.loads((trained / f"{model}_metrics.json").read_text())
    for key in (
        "model",
        "test_mae",
        "test_rmse",
        "test_r2",
        "val_mae",
        "best_epoch",
        "epochs_run",
        "train_seconds",
        "n_train",
        "n_val",
        "n_test",
        "config",
        "data_fingerprint",
        "hr_lstm_version",
        "noise_floor_mae",
    ):
        assert key in metrics, key
    assert metrics["test_mae"] < 0.95 * metrics["baseline_mean_mae"], "a trained model must beat predicting the mean"
    assert metrics["test_r2"] > 0.1
    assert 0 < metrics["noise_floor_mae"] < metrics["test_mae"]
    assert metrics["n_train"] > 4 * metrics["n_test"]
    payload = torch.load(trained / f"{model}_best.pt", weights_only=True)
    assert payload["config"]["model"]["model"] == model and payload["metrics"]["test_mae"] == metrics["test_mae"]
    assert payload["data_fingerprint"] == metrics["data_fingerprint"]
    n_inputs = len(payload["normalizer"]["mean"])
    # the default inputs: 15 columns (sport is 4 of them, sport_variant 2; previous_workout's 2 left out)
    assert n_inputs == payload["config"]["model"]["n_inputs"] == (3 if model == "lstm" else 15)


def test_evaluate_reproduces_the_test_metrics(trained, sim_data, capsys):
    ckpt = trained / "lstm_embeddings_best.pt"
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(sim_data)]) == 0
    result = json.loads((trained / "lstm_embeddings_best_evaluation.json").read_text())
    saved = load_checkpoint(ckpt)["metrics"]
    assert result["scope"].startswith("test split")
    assert result["mae"] == pytest.approx(saved["test_mae"], rel=1e-4)
    assert result["noise_floor_mae"] == pytest.approx(saved["noise_floor_mae"], rel=1e-6)
    assert "median workout MAE" in capsys.readouterr().out


def test_same_seed_same_result(sim_data, tmp_path):
    runs = []
    for name in ("a", "b"):
        args = ["train", "--epochs", "1", "--data", str(sim_data), "--out", str(tmp_path / name), "--seed", "5", *TINY]
        assert main(args) == 0
        runs.append(json.loads((tmp_path / name / "lstm_embeddings_metrics.json").read_text()))
    assert runs[0]["test_mae"] == runs[1]["test_mae"]


def test_cold_start_split_uses_the_mean_embedding(sim_data, tmp_path):
    args = [
        "train",
        "--model",
        "lstm_embeddings",
        "--split",
        "user",
        "--epochs",
        "1",
        "--data",
        str(sim_data),
        "--out",
        str(tmp_path),
        *TINY,
    ]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "lstm_embeddings_metrics.json").read_text())
    assert np.isfinite(metrics["test_mae"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data", "/nonexistent/x.json.gz"], "/nonexistent/x.json.gz: no such file"),
        (["train", "--data", "/tmp"], "/tmp: is a directory"),
        (["train", "--steps", "0"], "--steps 0: must be at least 1"),
        (["train", "--epochs", "-1"], "--epochs -1: must be 0 or more"),
        (["train", "--features", "speed,heartbeat"], "unknown feature(s) heartbeat"),
        (["evaluate", "--checkpoint", "/nonexistent.pt"], "/nonexistent.pt: no such checkpoint"),
    ],
)
def test_errors_are_one_line_with_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow
def test_python_m_train_accepts_the_original_flags(sim_data, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "hr_lstm.train",
        "--model",
        "lstm",
        "--hidden_size",
        "16",
        "--num_layers",
        "2",
        "--dropout",
        "0.2",
        "--epochs",
        "1",
        "--batch_size",
        "64",
        "--lr",
        "0.001",
        "--patience",
        "25",
        "--device",
        "cpu",
        "--data",
        str(sim_data),
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "epoch   1/1" in done.stdout and (tmp_path / "lstm_best.pt").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "hr_lstm.train", "--data", str(tmp_path / "lstm_best.pt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "lstm_best.pt" in bad.stderr and "Traceback" not in bad.stderr
