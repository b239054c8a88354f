"""The house rules the layout relies on: one way to configure, one way to load, old checkpoints load,
no private names across modules, names that say what they mean."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_record, write_fitrec

from hr_lstm.cli import main as cli_main
from hr_lstm.cli.training import FLAG_LABELS, run_config_from_args
from hr_lstm.data.features import ORIGINAL_INPUTS, FeatureConfig
from hr_lstm.errors import HRLSTMError
from hr_lstm.evaluation.evaluate import evaluate_checkpoint
from hr_lstm.models.checkpoint import load_checkpoint
from hr_lstm.reporting.analysis import run_config
from hr_lstm.training.config import RunConfig
from hr_lstm.training.trained import TrainedModel

PACKAGE = Path(__file__).resolve().parents[1] / "hr_lstm"
FIXTURES = Path(__file__).resolve().parent / "data"


# ---- one way to configure ------------------------------------------------------------------------


def test_override_returns_a_changed_copy_and_leaves_the_original_alone():
    base = RunConfig()
    cfg = base.override({"model.hidden_size": 7, "train.epochs": 3, "features.inputs": ("original",)})
    assert (cfg.model.hidden_size, cfg.train.epochs) == (7, 3)
    assert cfg.features.inputs == ORIGINAL_INPUTS, "named input sets expand as the part is rebuilt"
    assert base.model.hidden_size == RunConfig().model.hidden_size and base.features.inputs != ORIGINAL_INPUTS


def test_override_refuses_settings_that_do_not_exist():
    with pytest.raises(HRLSTMError, match="unknown setting 'model.hiden_size'"):
        RunConfig().override({"model.hiden_size": 7})
    with pytest.raises(HRLSTMError, match="unknown setting 'trian.epochs'"):
        RunConfig().override({"trian.epochs": 3})
    with pytest.raises(HRLSTMError, match="unknown feature"):
        RunConfig().override({"features.inputs": ("speed", "heart_rate")})


def test_validate_names_every_problem_in_the_users_spelling():
    cfg = RunConfig().override({"train.epochs": -1, "train.steps": 0, "model.dropout": 1.0, "train.loss": "l1"})
    with pytest.raises(HRLSTMError) as caught:
        cfg.validate(FLAG_LABELS)
    message = str(caught.value)
    assert "--epochs -1: must be 0 or more" in message and "--steps 0: must be at least 1" in message
    assert "--dropout 1.0: must be in [0, 1)" in message
    assert "--loss 'l1': choose one of" in message


def test_command_line_and_notebooks_build_the_same_config():
    from hr_lstm.cli import build_parser

    args = build_parser().parse_args(
        [
            "train",
            "--hidden_size",
            "32",
            "--epochs",
            "3",
            "--seed",
            "4",
            "--lr",
            "0.01",
            "--features",
            "original",
            "--out",
            "/tmp/x/checkpoints",
        ]
    )
    from_cli = run_config_from_args(args)
    from_notebook = run_config(
        hidden_size=32,
        epochs=3,
        seed=4,
        lr=0.01,
        features="original",
        output_dir="/tmp/x",
        sim_users=from_cli.data.sim_users,
    )
    from_notebook = from_notebook.override({"train.out_dir": from_cli.train.out_dir})
    assert from_cli.as_dict() | {"train": None} == from_notebook.as_dict() | {"train": None}
    assert from_cli.train.epochs == from_notebook.train.epochs == 3 and from_cli.split.seed == 4


def test_seed_still_names_the_original_inputs_for_old_commands():
    assert FeatureConfig(inputs=("seed",)).inputs == FeatureConfig(inputs=("original",)).inputs == ORIGINAL_INPUTS


# ---- one way to load, and checkpoints written before the move ------------------------------------


def old_records(path: Path) -> Path:
    """The 60 hand-made workouts the v0.1 fixture checkpoint was trained and evaluated on."""
    records = [
        make_record(
            workout_id=100 * u + i,
            user_id=u,
            seed=100 * u + i,
            start=1_400_000_000 + 86400 * i,
            sport="run" if u % 2 else "bike",
            gender="female" if u % 3 else "male",
        )
        for u in range(1, 7)
        for i in range(10)
    ]
    return write_fitrec(path, records)


def test_a_checkpoint_written_before_the_move_loads_and_scores_as_it_did(tmp_path):
    checkpoint = FIXTURES / "lstm_embeddings_v0.1.pt"
    expected = json.loads((FIXTURES / "lstm_embeddings_v0.1.evaluation.json").read_text())
    assert load_checkpoint(checkpoint)["hr_lstm_version"] == "0.1.0"
    result = evaluate_checkpoint(checkpoint, str(old_records(tmp_path / "records.json")), log=lambda *a: None)
    assert result["scope"] == expected.pop("scope") == "test split (user_time)"
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


def test_trained_model_predicts_the_rows_it_is_asked_for(tmp_path):
    from hr_lstm.data.cache import load_workouts

    trained = TrainedModel.load(FIXTURES / "lstm_embeddings_v0.1.pt")
    workouts = load_workouts(
        old_records(tmp_path / "records.json"), trained.config.parse, cache=False, log=lambda *a: None
    )
    everything = trained.predict_bpm(workouts)
    rows = np.array([3, 17, 42])
    assert everything.shape == (len(workouts), trained.config.parse.seq_len)
    np.testing.assert_allclose(trained.predict_bpm(workouts, rows=rows), everything[rows], rtol=1e-6)
    unknown = trained.predict_bpm(workouts, users=trained.users(["nobody"] * len(workouts)))
    assert not np.allclose(unknown, everything), "a known athlete's own embedding changes the prediction"


def test_evaluate_command_on_the_old_checkpoint(tmp_path, capsys):
    out = tmp_path / "evaluation.json"
    data = old_records(tmp_path / "records.json")
    assert (
        cli_main(
            [
                "evaluate",
                "--checkpoint",
                str(FIXTURES / "lstm_embeddings_v0.1.pt"),
                "--data",
                str(data),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["n_workouts"] == 6


# ---- the code's own manners -----------------------------------------------------------------------


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_no_private_names_are_imported_across_modules():
    offenders = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("hr_lstm")):
                offenders += [
                    f"{path.relative_to(PACKAGE)}: {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert not offenders, offenders


def test_every_subpackage_says_what_it_holds():
    for init in PACKAGE.rglob("__init__.py"):
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} has no docstring"


def test_the_package_cites_no_file_outside_the_repository():
    for path in modules():
        text = path.read_text()
        assert "CONTEXT.md" not in text and "../shared" not in text, path
