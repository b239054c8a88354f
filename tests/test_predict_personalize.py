"""hr-lstm predict and personalize: outputs, bad input, and a new athlete's embedding fitted alone."""

from __future__ import annotations

import argparse
import contextlib
import io
import struct
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hr_lstm.cli import build_parser
from hr_lstm.cli import main as cli_main
from hr_lstm.cli.inference import add_personalize_arguments, add_predict_arguments, run_personalize, run_predict
from hr_lstm.data.fitrec import iter_records
from hr_lstm.data.recordings import write_records
from hr_lstm.errors import HRLSTMError
from hr_lstm.inference.finetune import PersonalizeConfig
from hr_lstm.inference.personalize import personalize
from hr_lstm.inference.predict import CSV_COLUMNS, predict_files
from hr_lstm.reporting.your_workouts import simulated_new_athlete
from hr_lstm.training.config import TrainConfig

REAL = Path(__file__).resolve().parents[2] / "shared" / "real_workouts"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"{REAL} not present (real recordings live in ../shared)")
TINY = [
    "--hidden_size",
    "16",
    "--num_layers",
    "1",
    "--embedding_dim",
    "4",
    "--batch_size",
    "16",
    "--lr",
    "0.02",
    "--device",
    "cpu",
] + (["--threads", "1"] if "threads" in {f.name for f in fields(TrainConfig)} else [])
COMMANDS = {
    "predict": (add_predict_arguments, run_predict),
    "personalize": (add_personalize_arguments, run_personalize),
}


def cli(*argv) -> tuple[int, str, str]:
    """Run `hr-lstm COMMAND ...` (through hr_lstm.cli once wired there), returning (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    wired = argv[0] in next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if wired:
            try:
                status = cli_main([str(a) for a in argv])
            except SystemExit as exc:  # argparse's usage errors: status 2, the message on stderr
                status = exc.code
        else:  # the same contract as hr_lstm.cli.main: one line on stderr and status 2 for user errors
            parser = argparse.ArgumentParser(prog=f"hr-lstm {argv[0]}")
            COMMANDS[argv[0]][0](parser)
            try:
                status = COMMANDS[argv[0]][1](parser.parse_args([str(a) for a in argv[1:]]))
            except HRLSTMError as exc:
                print(f"hr-lstm {argv[0]}: error: {exc}", file=err)
                status = 2
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def checkpoints(sim_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pp_checkpoints")
    with contextlib.redirect_stdout(io.StringIO()):
        for model, epochs in (("lstm_embeddings", "3"), ("lstm", "1")):
            assert (
                cli_main(
                    ["train", "--model", model, "--epochs", epochs, "--data", str(sim_data), "--out", str(out), *TINY]
                )
                == 0
            )
    return out


@pytest.fixture(scope="module")
def athlete(tmp_path_factory) -> Path:
    """A simulated athlete the checkpoint never saw: the highest resting heart rate of 8 (another seed)."""
    return simulated_new_athlete(tmp_path_factory.mktemp("athlete"), seed=2024)


@pytest.fixture(scope="module")
def personalised(checkpoints, athlete, tmp_path_factory):
    out = tmp_path_factory.mktemp("personalised") / "athlete.pt"
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        # The embedding rung, pinned: the tests below check its properties (only the new row changes); the
        # ladder's other rungs and its automatic choice are tested in tests/test_personalize_ladder.py.
        config = PersonalizeConfig(rung="embedding")
        result = personalize(checkpoints / "lstm_embeddings_best.pt", [athlete], out, user="athlete", config=config)
    return result, log.getvalue()


def gpx(path: Path, n=300, dt=3, heart_rate=True, times=True) -> Path:
    """A 15-minute run heading north at ~10 km/h."""
    points = "".join(
        f'<trkpt lat="{48 + i * dt * 2.8 / 111_195:.7f}" lon="11"><ele>{200 + 5 * np.sin(i / 30):.1f}</ele>'
        + (f"<time>2021-05-01T07:{i * dt // 60:02d}:{i * dt % 60:02d}Z</time>" if times else "")
        + (
            f"<extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>{120 + i // 10}</gpxtpx:hr>"
            "</gpxtpx:TrackPointExtension></extensions>"
            if heart_rate
            else ""
        )
        + "</trkpt>"
        for i in range(n)
    )
    path.write_text(
        '<gpx xmlns="http://www.topografix.com/GPX/1/1" xmlns:gpxtpx="http://www.garmin.com/xmlschemas/'
        f'TrackPointExtension/v1" version="1.1" creator="t"><trk><type>running</type><trkseg>{points}'
        "</trkseg></trk></gpx>"
    )
    return path


def truncated_fit(path: Path) -> Path:
    path.write_bytes(bytes([14, 0x10]) + struct.pack("<HI", 2100, 1000) + b".FIT\x00\x00" + b"\x40\x00\x00\x14\x00\x03")
    return path


def check_outputs(out: Path, name: str, measured: bool = True) -> pd.DataFrame:
    frame = pd.read_csv(out / f"{name}_prediction.csv")
    assert tuple(frame.columns) == CSV_COLUMNS and len(frame) == 500
    assert frame["predicted_heart_rate_bpm"].between(30, 230).all()
    assert frame["heart_rate_bpm"].notna().all() if measured else frame["heart_rate_bpm"].isna().all()
    assert (out / f"{name}_prediction.png").read_bytes()[:4] == b"\x89PNG"
    return frame


@needs_real
def test_predict_real_fit_and_gpx(checkpoints, tmp_path):
    files = [REAL / "runpandas" / "run.fit", REAL / "runpandas" / "16aebccf-cf92-4b85-bf64-b7d2d219396b.gpx"]
    status, out, _ = cli("predict", "--checkpoint", checkpoints / "lstm_embeddings_best.pt", *files, "--out", tmp_path)
    assert status == 0
    for name in ("run", "16aebccf-cf92-4b85-bf64-b7d2d219396b"):
        frame = check_outputs(tmp_path, name)
        mae = (frame["predicted_heart_rate_bpm"] - frame["heart_rate_bpm"]).abs().mean()
        assert f"predicted {name}: MAE {mae:5.1f} BPM" in out
    assert "Predicted 2 workouts from 2 of 2 files (0 skipped); mean MAE" in out


def test_predict_fitrec_file_and_a_batch_with_bad_files(checkpoints, athlete, tmp_path):
    records = [r for _, _, r in iter_records(athlete)][:2]
    small = write_records(records, tmp_path / "two.json.gz")
    bad, cut = tmp_path / "notes.fit", truncated_fit(tmp_path / "cut.fit")
    bad.write_text("not a recording\n")
    status, out, err = cli(
        "predict", "--checkpoint", checkpoints / "lstm_best.pt", bad, small, cut, "--out", tmp_path / "pred"
    )
    assert status == 0 and err == ""
    for record in records:
        check_outputs(tmp_path / "pred", f"two_{record['id']}")
    assert "Predicted 2 workouts from 1 of 3 files (2 skipped); mean MAE" in out
    assert "skipped notes.fit: not a FIT, GPX, TCX or CSV recording" in out
    assert "skipped cut.fit: truncated FIT file" in out


def test_predict_a_bad_file_alone_is_one_line_and_status_2(checkpoints, tmp_path):
    bad = tmp_path / "notes.gpx"
    bad.write_text("hello")
    status, out, err = cli("predict", "--checkpoint", checkpoints / "lstm_best.pt", bad, "--out", tmp_path / "pred")
    assert status == 2 and out == "" and not (tmp_path / "pred").exists()
    assert err.count("\n") == 1 and "notes.gpx: not a FIT, GPX, TCX or CSV recording" in err


def test_predict_without_heart_rate_has_no_mae_and_personalize_refuses_it(checkpoints, tmp_path):
    run = gpx(tmp_path / "nohr.gpx", heart_rate=False)
    status, out, _ = cli("predict", "--checkpoint", checkpoints / "lstm_best.pt", run, "--out", tmp_path)
    assert status == 0 and "predicted nohr: no measured heart rate" in out
    check_outputs(tmp_path, "nohr", measured=False)
    notime = gpx(tmp_path / "notime.gpx", times=False)
    status, out, err = cli(
        "personalize",
        "--checkpoint",
        checkpoints / "lstm_embeddings_best.pt",
        "--workouts",
        run,
        notime,
        "--out",
        tmp_path / "me.pt",
    )
    assert status == 2 and not (tmp_path / "me.pt").exists()
    assert "nohr.gpx: no heart rate in this recording" in out and "notime.gpx: GPX track has no time stamps" in out
    assert err.count("\n") == 1 and "no usable workouts" in err


def test_personalize_improves_the_held_out_workout_quickly(personalised):
    result, log = personalised
    assert result.held_out is not None and len(result.train_workouts) >= 5
    assert result.mae_after <= result.mae_before, (result.mae_before, result.mae_after)
    assert result.train_mae_after < result.train_mae_before
    assert result.fit_seconds < 30 and 0 < result.steps_run <= PersonalizeConfig().steps
    assert f"MAE {result.mae_before:.1f} BPM before (mean embedding) -> {result.mae_after:.1f} BPM after" in log


def test_only_the_new_embedding_row_changes(checkpoints, personalised):
    result, _ = personalised
    base = torch.load(checkpoints / "lstm_embeddings_best.pt", weights_only=True)
    new = torch.load(result.checkpoint, weights_only=True)
    assert new["state_dict"].keys() == base["state_dict"].keys()
    for key, weights in base["state_dict"].items():
        if key != "user_embedding.weight":
            assert torch.equal(new["state_dict"][key], weights), key
    old_table, new_table = base["state_dict"]["user_embedding.weight"], new["state_dict"]["user_embedding.weight"]
    assert new_table.shape[0] == old_table.shape[0] + 1 and torch.equal(new_table[:-1], old_table)
    assert not torch.equal(new_table[-1], old_table[1:].mean(dim=0))
    assert new["config"]["model"]["n_users"] == base["config"]["model"]["n_users"] + 1
    assert new["user_ids"] == [*base["user_ids"], "athlete"]
    info = new["metrics"]["personalisation"]
    assert info["user"] == "athlete" and info["mae_after"] == pytest.approx(result.mae_after)
    assert new["normalizer"] == base["normalizer"] and new["data_fingerprint"] == base["data_fingerprint"]


def test_personalised_checkpoint_predicts_with_the_new_user(checkpoints, athlete, personalised, sim_data):
    result, _ = personalised
    quiet = lambda *a: None  # noqa: E731
    after, _ = predict_files(result.checkpoint, [athlete], write=False, report=quiet)
    before, _ = predict_files(checkpoints / "lstm_embeddings_best.pt", [athlete], write=False, report=quiet)
    assert {p.user for p in after} == {"user athlete"} and {p.user for p in before} == {
        "mean embedding, unknown user; band for an athlete the model does not know"
    }
    held_out = {p.name: p.mae for p in after}[result.held_out]
    assert held_out == pytest.approx(result.mae_after, abs=0.05)  # CSV values are rounded to 0.1 BPM
    from hr_lstm.evaluation.evaluate import evaluate_checkpoint

    evaluated = evaluate_checkpoint(result.checkpoint, str(sim_data), log=quiet)
    assert evaluated["scope"].startswith("test split") and np.isfinite(evaluated["mae"])


def test_personalize_needs_an_embedding_checkpoint(checkpoints, athlete, tmp_path):
    status, _, err = cli(
        "personalize", "--checkpoint", checkpoints / "lstm_best.pt", "--workouts", athlete, "--out", tmp_path / "me.pt"
    )
    assert status == 2 and err.count("\n") == 1
    assert "lstm_best.pt: personalize needs an lstm_embeddings checkpoint" in err


def test_personalize_one_workout_reports_no_held_out_mae(checkpoints, tmp_path):
    run = gpx(tmp_path / "run.gpx")
    status, out, _ = cli(
        "personalize",
        "--checkpoint",
        checkpoints / "lstm_embeddings_best.pt",
        "--workouts",
        run,
        "--out",
        tmp_path / "me.pt",
        "--steps",
        "20",
        "--user",
        "solo",
    )
    assert status == 0 and "no held-out MAE" in out and "Wrote" in out
    payload = torch.load(tmp_path / "me.pt", weights_only=True)
    assert payload["metrics"]["personalisation"]["mae_before"] is None and payload["user_ids"][-1] == "solo"


def test_personalize_rung_flag_prints_the_ladder_and_records_the_rung(checkpoints, athlete, tmp_path):
    base = ["personalize", "--checkpoint", checkpoints / "lstm_embeddings_best.pt", "--workouts", athlete]
    status, out, _ = cli(*base, "--out", tmp_path / "head.pt", "--rung", "head", "--steps", "20", "--user", "h")
    assert status == 0 and "rung 'head': asked for (rung=head)" in out
    assert "rung       selection MAE  steps" in out and "<- chosen" in out
    assert "Personalised 'h' from 8 workouts (0 skipped), rung 'head': held-out MAE" in out
    info = torch.load(tmp_path / "head.pt", weights_only=True)["metrics"]["personalisation"]
    assert info["rung"] == "head" and info["config"]["rung"] == "head" and info["config"]["steps"] == 20
    assert [r["rung"] for r in info["ladder"]] == ["embedding", "head"]
    with contextlib.redirect_stderr(io.StringIO()) as err, pytest.raises(SystemExit) as exit_:
        cli_main([str(a) for a in base] + ["--out", str(tmp_path / "x.pt"), "--rung", "everything"])
    assert exit_.value.code == 2 and "invalid choice: 'everything'" in err.getvalue()
    assert not (tmp_path / "x.pt").exists()
    with contextlib.redirect_stdout(io.StringIO()) as help_text, pytest.raises(SystemExit) as exit_:
        cli_main(["personalize", "--help"])
    assert exit_.value.code == 0 and "latest ~20% of the" in " ".join(help_text.getvalue().split())


def by_start(fitrec_file: Path) -> list[dict]:
    return sorted((r for _, _, r in iter_records(fitrec_file)), key=lambda r: r["timestamp"][0])


@pytest.mark.parametrize("n_new", [1, 2], ids=["one new file", "two new files chained"])
def test_new_files_see_the_history_the_personalised_checkpoint_stored(checkpoints, athlete, tmp_path, n_new):
    """Personalised on the earlier workouts, the latest predicted on their own get the inputs they had inside the
    athlete's full folder: the previous workout and the days since the first come from the stored history,
    and files given together chain among themselves."""
    from hr_lstm.inference.personalize import athlete_workouts
    from hr_lstm.inference.predict import stored_history, workouts_in_context
    from hr_lstm.inference.workout_files import read_workout_files
    from hr_lstm.training.trained import TrainedModel

    quiet = lambda *a: None  # noqa: E731
    records = by_start(athlete)
    earlier = write_records(records[:-n_new], tmp_path / "earlier.json.gz")
    new = [write_records([r], tmp_path / f"new{i}.json.gz") for i, r in enumerate(records[-n_new:])]
    config = PersonalizeConfig(rung="embedding", steps=5)
    result = personalize(checkpoints / "lstm_embeddings_best.pt", [earlier], tmp_path / "me.pt", "me", config=config)
    model = TrainedModel.load(result.checkpoint)

    history = stored_history(model)  # the round trip: what personalize read, back from the saved checkpoint
    read = result.workouts.workouts
    assert list(history["start_time"]) == list(read.meta["start_time"].astype(float))
    np.testing.assert_allclose(history["heart_rate_bpm"], read.channel("heart_rate_bpm").mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(history["speed_kmh"], read.channel("speed_kmh").mean(axis=1), rtol=1e-6)
    assert set(history["user_id"]) == {"me"}

    full = athlete_workouts(model, [athlete], "me", "unknown", report=quiet)  # the folder as personalize reads it
    expected = model.inputs(full.workouts)[-n_new:]
    data = read_workout_files(new, model.config.parse, report=None)
    assert len(data) == n_new
    torch.testing.assert_close(model.inputs(workouts_in_context(model, data, ["me"] * n_new)), expected)
    assert not torch.allclose(model.inputs(data.workouts), expected), "without the history the inputs differ"

    preds, _ = predict_files(result.checkpoint, new, write=False, report=quiet)  # the command's own path
    in_folder = model.predict_bpm(full.workouts, users=model.users(["me"] * len(full)))[-n_new:]
    for pred, want in zip(preds, in_folder):
        np.testing.assert_allclose(pred.frame["predicted_heart_rate_bpm"], want, atol=0.051)


def test_a_file_without_heart_rate_tells_the_next_one_nothing(checkpoints, tmp_path):
    """In a batch, the workout after one with no measured heart rate gets an unknown previous heart rate
    (the training mean), not the stand-in channel's value."""
    from hr_lstm.data.features import FEATURES
    from hr_lstm.inference.predict import workouts_in_context
    from hr_lstm.inference.workout_files import read_workout_files
    from hr_lstm.training.trained import TrainedModel

    first, second = gpx(tmp_path / "a.gpx", heart_rate=False), gpx(tmp_path / "b.gpx")
    text = second.read_text().replace("2021-05-01T07:", "2021-05-02T07:")  # the next day
    second.write_text(text)
    model = TrainedModel.load(checkpoints / "lstm_embeddings_best.pt")
    data = read_workout_files([first, second], model.config.parse, report=None)
    assert list(data.has_heart_rate) == [False, True]
    previous = FEATURES["previous_workout"].compute(workouts_in_context(model, data, ["unknown"] * 2))
    assert np.isnan(previous[1, 0, 0]) and np.isfinite(previous[1, 0, 1])  # heart rate unknown, speed known
    days = FEATURES["days_since_first"].compute(workouts_in_context(model, data, ["unknown"] * 2))
    assert days[1, 0, 0] == pytest.approx(1.0)


def test_a_season_with_a_band_and_a_warm_start_labels_every_workout(checkpoints, personalised, tmp_path):
    """20+ files, a personalised checkpoint, its band and a warm start: every workout is the athlete's, banded
    and warm-started (a loop variable once shadowed the users' list: labels went wrong, the 19th crashed)."""
    result, _ = personalised
    files = [gpx(tmp_path / f"run_{i:02d}.gpx", n=240 + 3 * i) for i in range(22)]
    preds, data = predict_files(
        result.checkpoint, files, tmp_path / "out", write=False, report=lambda *a: None, warm_start_min=5
    )
    assert len(preds) == 22 and not data.skipped
    assert [p.user for p in preds] == ["user athlete"] * 22
    for pred in preds:
        frame = pred.frame
        assert frame["predicted_low_bpm"].notna().all() and frame["predicted_high_bpm"].notna().all()
        assert (frame["predicted_low_bpm"] <= frame["warm_start_heart_rate_bpm"]).all()
        assert (frame["warm_start_heart_rate_bpm"] <= frame["predicted_high_bpm"]).all()
        assert pred.warm_start_mae_after_k is not None and np.isfinite(pred.warm_start_mae_after_k)


@pytest.mark.parametrize("flag, value", [("--lr", "nan"), ("--l2", "nan"), ("--lr", "inf"), ("--l2", "-1")])
def test_personalize_refuses_nan_and_infinite_settings_before_any_work(checkpoints, tmp_path, flag, value):
    run = gpx(tmp_path / "run.gpx")
    ck = checkpoints / "lstm_embeddings_best.pt"
    status, out, err = cli(
        "personalize", "--checkpoint", ck, "--workouts", run, "--out", tmp_path / "me.pt", flag, value
    )
    assert status == 2 and out == "" and "finite numbers" in err and not (tmp_path / "me.pt").exists()


def test_personalize_twice_with_one_seed_gives_the_same_model_and_says_the_seed(checkpoints, athlete, tmp_path):
    ck, outs = checkpoints / "lstm_embeddings_best.pt", []
    for i, seed in enumerate(("3", "3", "4")):
        out = tmp_path / f"me{i}.pt"
        status, text, _ = cli("personalize", "--checkpoint", ck, "--workouts", athlete, "--out", out, "--seed", seed)
        assert status == 0 and f"(seed {seed})" in text
        outs.append(torch.load(out, weights_only=True)["state_dict"])
    assert all(torch.equal(outs[0][k], outs[1][k]) for k in outs[0])


def test_personalize_refuses_an_out_it_must_not_write_before_any_work(checkpoints, tmp_path):
    run, ck = gpx(tmp_path / "run.gpx"), checkpoints / "lstm_embeddings_best.pt"
    (tmp_path / "folder").mkdir()
    status, out, err = cli("personalize", "--checkpoint", ck, "--workouts", run, "--out", tmp_path / "folder")
    assert status == 2 and out == "" and "is a folder" in err
    status, out, err = cli("personalize", "--checkpoint", ck, "--workouts", run, "--out", ck)
    assert status == 2 and out == "" and "is the --checkpoint itself" in err


def test_personalize_uses_a_workout_given_twice_once_and_says_the_cap(checkpoints, tmp_path):
    """The same run as GPX and again under another name, and a cap of 3: the repeat is skipped with its reason
    (it must not be both fitted on and held out), and the workouts the cap leaves out are counted."""
    import shutil

    runs = []
    for i in range(6):
        path = gpx(tmp_path / f"run{i}.gpx")
        path.write_text(path.read_text().replace("2021-05-01", f"2021-05-{i + 1:02d}"))
        runs.append(path)
    runs.append(Path(shutil.copy(runs[2], tmp_path / "copy_of_run2.gpx")))
    ck, me = checkpoints / "lstm_embeddings_best.pt", tmp_path / "me.pt"
    status, out, _ = cli(
        "personalize",
        "--checkpoint",
        ck,
        "--workouts",
        *runs,
        "--out",
        me,
        "--max-workouts",
        "3",
        "--rung",
        "embedding",
    )
    assert status == 0
    assert "skipped  copy_of_run2: the same workout as run2 (a repeat)" in out
    assert "fitting the latest 3 of 5 workouts: the 2 earliest are left out" in out
    assert "Personalised 'me' from 4 workouts (1 skipped, 2 earliest left out by the cap)" in out


def test_a_season_batch_writes_csvs_and_says_it_drew_no_figures(checkpoints, tmp_path):
    """More than 20 workouts: a figure each would be 80% of the time; CSVs only, said; --png all draws them."""
    (tmp_path / "runs").mkdir()
    runs = [gpx(tmp_path / "runs" / f"r{i:02d}.gpx") for i in range(21)]
    ck = checkpoints / "lstm_embeddings_best.pt"
    status, out, _ = cli("predict", "--checkpoint", ck, tmp_path / "runs", "--out", tmp_path / "auto")
    assert status == 0 and "21 workouts: CSVs only, no PNG per workout" in out and "[21/21]" in out
    assert len(list((tmp_path / "auto").glob("*.csv"))) == 21 and not list((tmp_path / "auto").glob("*.png"))
    status, out, _ = cli("predict", "--checkpoint", ck, *runs[:2], "--out", tmp_path / "all", "--png", "all")
    assert status == 0 and len(list((tmp_path / "all").glob("*.png"))) == 2


@pytest.mark.parametrize("argv", [["--warm-start-min", "nan"], ["--warm-start-min", "1000"], ["--warm-start-min", "inf"],
                                  ["--sport", "quidditch"], ["--sport", ""]])  # fmt: skip
def test_predict_refuses_settings_that_would_mean_nothing(checkpoints, tmp_path, argv):
    run = gpx(tmp_path / "run.gpx")
    status, out, err = cli("predict", "--checkpoint", checkpoints / "lstm_embeddings_best.pt", run, *argv,
                           "--out", tmp_path / "p")  # fmt: skip
    assert status == 2 and not (tmp_path / "p").exists() and err.strip()


def test_plan_refuses_an_unknown_sport(checkpoints, tmp_path):
    route = gpx(tmp_path / "route.gpx")
    status, out, err = cli("plan", route, "--checkpoint", checkpoints / "lstm_embeddings_best.pt", "--pace", "5:00/km",
                           "--sport", "quidditch", "--out", tmp_path / "p")  # fmt: skip
    assert status == 2 and "no sport this tool knows" in err


def test_metrics_json_holds_no_nan():
    from hr_lstm.models.checkpoint import plain

    assert plain({"mae": float("nan"), "rows": [1.0, float("inf")], "n": np.int64(3)}) == {
        "mae": None,
        "rows": [1.0, None],
        "n": 3,
    }


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--pace", "0:01/km"], "a speed from 1 to 100 km/h"),
        (["--speed-kmh", "1e9"], "a speed from 1 to 100 km/h"),
        (["--speed-kmh", "nan"], "a speed from 1 to 100 km/h"),
        (["--max-hr", "40"], "a ceiling from 80 to 230 BPM"),
        (["--max-hr", "nan"], "a ceiling from 80 to 230 BPM"),
    ],
)
def test_plan_refuses_a_pace_or_ceiling_no_athlete_has_at_once(checkpoints, tmp_path, argv, expected):
    import time

    route = gpx(tmp_path / "route.gpx")
    started = time.perf_counter()
    status, out, err = cli("plan", route, "--checkpoint", checkpoints / "lstm_embeddings_best.pt", *argv,
                           "--out", tmp_path / "p")  # fmt: skip
    assert status == 2 and expected in err and time.perf_counter() - started < 10


def test_two_personalize_runs_into_one_checkpoint_the_second_is_refused(checkpoints, tmp_path):
    import fcntl
    import os

    run, out = gpx(tmp_path / "run.gpx"), tmp_path / "me.pt"
    fd = os.open(tmp_path / "me.pt.lock", os.O_RDWR | os.O_CREAT, 0o644)  # a first run holds it (this process)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        status, _, err = cli("personalize", "--checkpoint", checkpoints / "lstm_embeddings_best.pt", "--workouts", run,
                             "--out", out)  # fmt: skip
    finally:
        os.close(fd)
    assert status == 2 and "another personalize" in err and not out.exists()
    status, _, _ = cli("personalize", "--checkpoint", checkpoints / "lstm_embeddings_best.pt", "--workouts", run,
                       "--out", out)  # fmt: skip
    assert status == 0 and out.exists() and not (tmp_path / "me.pt.lock").exists()


def test_evaluate_names_the_training_data_its_checkpoint_records(checkpoints, tmp_path):
    import torch

    payload = torch.load(checkpoints / "lstm_embeddings_best.pt", weights_only=True)
    payload["config"]["data"]["path"] = "moved_away/s8.json.gz"
    torch.save(payload, tmp_path / "ck.pt")
    status, _, err = cli("evaluate", "--checkpoint", tmp_path / "ck.pt", "--out", tmp_path / "e.json")
    assert status == 2 and "the training data ck.pt records" in err and "--data" in err
