"""Whatever is passed as --checkpoint, the answer is one line naming the file and what it is, and status 2."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import torch

from hr_lstm.cli import main as cli_main
from tests.test_predict_personalize import gpx

SMALL = ["--hidden-size", "8", "--num-layers", "1", "--embedding-dim", "2", "--epochs", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(sim_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ck")
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main(["train", "--data", str(sim_data), "--out", str(out), *SMALL]) == 0
    return out


def predict_with(checkpoint: Path, tmp_path: Path) -> tuple[int, str]:
    run = gpx(tmp_path / "run.gpx")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = cli_main(["predict", "--checkpoint", str(checkpoint), str(run), "--out", str(tmp_path / "p")])
    return status, err.getvalue()


def altered(trained: Path, tmp_path: Path, change) -> Path:
    payload = torch.load(trained / "lstm_embeddings_best.pt", weights_only=True)
    change(payload)
    path = tmp_path / "altered.pt"
    torch.save(payload, path)
    return path


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"hello, I am notes\n", "the file is text"),
        (bytes(range(7, 250)) * 3, "of unknown content"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n", "a Git LFS pointer"),
        (b"<!DOCTYPE html><html><body>Not Found</body></html>", "an HTML page"),
        (b'{"model": "lstm"}', "JSON or text"),
        (bytes([14, 0x10, 0, 0, 0, 0, 0, 0]) + b".FIT" + bytes(20), "a FIT recording"),
    ],
)
def test_files_that_are_no_checkpoint_say_what_they_are(tmp_path, content, expected):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    status, err = predict_with(path, tmp_path)
    assert status == 2 and err.count("\n") == 1 and "model.pt" in err and expected in err
    assert "pickled" not in err


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda p: p["config"]["model"].update(new_knob=3), "does not know (new_knob)"),
        (lambda p: p["config"].pop("model"), "no model settings"),
        (lambda p: p["config"]["model"].update(model="transformer"), "model settings not usable"),
        (lambda p: p["state_dict"].update({k: v * float("nan") for k, v in p["state_dict"].items()}), "NaN"),
    ],
)
def test_checkpoints_this_version_cannot_use_are_named(trained, tmp_path, change, expected):
    status, err = predict_with(altered(trained, tmp_path, change), tmp_path)
    assert status == 2 and err.count("\n") == 1 and "altered.pt" in err and expected in err


def test_the_resume_file_is_not_taken_for_a_model(trained, tmp_path):
    status, err = predict_with(trained / "lstm_embeddings_last.pt", tmp_path)
    assert status == 2 and "resume file" in err and "lstm_embeddings_best.pt" in err
