"""What people export: per-second CSV streams (FIT record columns, Strava streams), gzipped files, folders
and bulk export folders with an activity table naming each file's sport."""

from __future__ import annotations

import contextlib
import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hr_lstm.cli import main as cli_main
from hr_lstm.data.recordings import build_record, collect_workout_files, import_recordings, read_recording
from hr_lstm.data.simulate import SimConfig, simulate
from hr_lstm.errors import DataError
from hr_lstm.inference.predict import predict_files
from hr_lstm.training.trained import TrainedModel

N = 1200  # 20 minutes at 1 Hz


def fit_record_csv(path: Path, semicircles: bool = True, gz: bool = False) -> Path:
    """A FIT file's record messages as fitdecode dumps them: m/s, metres, positions in semicircles."""
    t = np.arange(N)
    speed_ms = 2.8 + 0.3 * np.sin(t / 120)
    lat = 48.0 + np.cumsum(speed_ms) / 111_195.0
    scale = 2**31 / 180.0 if semicircles else 1.0
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2021-05-01 07:30:00", periods=N, freq="s", tz="UTC").astype(str),
            "Unnamed: 0": t,
            "heart_rate": np.round(120 + 40 * (1 - np.exp(-t / 90))),
            "enhanced_speed": speed_ms,
            "enhanced_altitude": 200 + 10 * np.sin(t / 300),
            "distance": np.cumsum(speed_ms),
            "position_lat": np.round(lat * scale),
            "position_long": np.round(np.full(N, 11.0) * scale),
            "cadence": 85,
        }
    )
    text = frame.to_csv(index=False).encode()
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


def strava_stream_csv(path: Path) -> Path:
    """A Strava stream: seconds from the start, heartrate, velocity_smooth (m/s), latlng pairs; no date."""
    t = np.arange(0, N, 2)
    lat = 45.0 + t * 3.0 / 111_195.0
    frame = pd.DataFrame(
        {
            "time": t,
            "heartrate": 130 + (t > 300) * 20,
            "velocity_smooth": 3.0,
            "altitude": 50.0,
            "distance": 3.0 * t,
            "latlng": [f"[{a:.6f}, 7.0]" for a in lat],
        }
    )
    path.write_text(frame.to_csv(index=False))
    return path


@pytest.mark.parametrize("semicircles", [True, False])
def test_fit_record_csv_reads_units_and_positions(tmp_path, semicircles):
    rec = read_recording(fit_record_csv(tmp_path / "RUN_2021-05-01.fit.csv.gz", semicircles, gz=True))
    s = rec.samples
    assert rec.file_format == "csv" and len(s) == N
    assert rec.start_time == pd.Timestamp("2021-05-01 07:30:00", tz="UTC")
    assert s["speed_kmh"].between(9.0, 11.2).all()  # 2.5-3.1 m/s in km/h
    assert s["latitude"].between(48.0, 48.1).all() and np.allclose(s["longitude"], 11.0, atol=1e-6)
    assert s["heart_rate_bpm"].iloc[0] == 120 and s["altitude_m"].between(189, 211).all()
    record, summary = build_record(rec, "c", "unknown", None, 500, "uniform")
    assert summary.speed_source == "device" and summary.sport == "run" and summary.sport_source == "inferred"
    assert abs(np.mean(record["speed"]) - 2.8 * 3.6) < 0.3


def test_strava_stream_takes_its_start_from_the_name(tmp_path):
    rec = read_recording(strava_stream_csv(tmp_path / "run_2021-06-02-18-05-00.csv"))
    assert rec.start_time == pd.Timestamp("2021-06-02 18:05:00", tz="UTC")
    assert any("taken from the file's name" in n for n in rec.notes)
    assert rec.samples["speed_kmh"].eq(10.8).all() and rec.samples["latitude"].iloc[-1] > 45.03
    assert rec.samples["time_s"].iloc[-1] == N - 2
    record, summary = build_record(rec, "s", "unknown", None, 100, "uniform")
    assert record["heart_rate"][0] == 130 and record["heart_rate"][-1] == 150


@pytest.mark.parametrize(
    "text, expected",
    [
        ("time,heartrate\n0,120\n1,121\n", "nothing says when it started"),
        ("timestamp,cadence\n2021-05-01T07:00:00Z,80\n", "not a FIT, GPX, TCX or CSV"),
        ("timestamp,heart_rate\nyesterday,120\nlater,121\n", "neither dates nor seconds"),
        ("timestamp,heart_rate\n", "no rows"),
    ],
)
def test_bad_csv_streams_are_one_line_naming_the_file(tmp_path, text, expected):
    path = tmp_path / "stream.csv"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        read_recording(path)
    assert "stream.csv" in str(info.value) and expected in str(info.value) and "\n" not in str(info.value)


def strava_export(root: Path) -> Path:
    """A bulk export: activities.csv (Strava's columns) and an activities/ folder of gzipped files."""
    (root / "activities").mkdir(parents=True)
    fit_record_csv(root / "activities" / "101.csv.gz", gz=True)
    fit_record_csv(root / "activities" / "102.csv", gz=False)
    fit_record_csv(root / "activities" / "103.csv.gz", gz=True)
    fit_record_csv(root / "activities" / "104.csv.gz", gz=True)  # not in the table
    table = pd.DataFrame(
        {
            "Activity ID": [101, 102, 103, 105, 106],
            "Activity Date": ["May 1, 2021, 7:30:00 AM"] * 5,
            "Activity Type": ["Run", "Ride", "Ride", "Run", "Weight Training"],
            "Commute": ["false", "false", "true", "false", "false"],
            "Filename": [
                "activities/101.csv.gz",
                "activities/102.csv",
                "activities/103.csv.gz",
                "activities/105.fit.gz",
                "",
            ],
        }
    )
    table.to_csv(root / "activities.csv", index=False)
    return root


def test_export_folder_gives_each_file_its_table_sport_and_says_what_it_left(tmp_path):
    root = strava_export(tmp_path / "export")
    found = collect_workout_files([root])
    names = [p.name for p in found.files]
    assert names == ["101.csv.gz", "102.csv", "103.csv.gz", "104.csv.gz"]
    assert {p.name: s for p, s in found.sports.items()} == {
        "101.csv.gz": "run",
        "102.csv": "bike",
        "103.csv.gz": "bike (transport)",
    }
    assert [p.name for p, _ in found.skipped] == ["105.fit.gz"] and "not in the folder" in found.skipped[0][1]
    notes = " | ".join(found.notes)
    assert "lists 5 activities, 1 without a file" in notes and "1 recordings not listed" in notes

    result = import_recordings([root], "me")
    assert [r["sport"] for r in result.records] == ["run", "bike", "bike (transport)", "run"]
    assert result.n_files == 5 and len(result.skipped) == 1
    relabelled = result.imported[1]
    assert relabelled.sport_source == "given"


def test_plain_folder_is_every_recording_below_it_once(tmp_path):
    (tmp_path / "a" / "deeper").mkdir(parents=True)
    fit_record_csv(tmp_path / "a" / "x.csv")
    fit_record_csv(tmp_path / "a" / "deeper" / "y.csv.gz", gz=True)
    (tmp_path / "a" / "notes.txt").write_text("hi")
    found = collect_workout_files([tmp_path / "a", tmp_path / "a" / "x.csv"])
    assert found.files == [tmp_path / "a" / "deeper" / "y.csv.gz", tmp_path / "a" / "x.csv"]  # path order, once


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    sim = root / "sim.json.gz"
    simulate(SimConfig(n_users=6, seed=5, min_workouts=12, max_workouts=12), sim)
    small = ["--hidden-size", "8", "--num-layers", "1", "--embedding-dim", "2", "--epochs", "1", "--device", "cpu"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main(["train", "--data", str(sim), "--out", str(root / "ck"), *small]) == 0
    return root / "ck" / "lstm_embeddings_best.pt"


def athlete_folder(folder: Path, n: int, offset_bpm: float = 0.0, start="2021-05-01 07:30:00") -> Path:
    """n per-second CSV runs two days apart, heart rate shifted by `offset_bpm`."""
    folder.mkdir(parents=True)
    for i, day in enumerate(pd.date_range(start, periods=n, freq="2D", tz="UTC")):
        path = fit_record_csv(folder / f"{i}.csv")
        frame = pd.read_csv(path)
        frame["timestamp"] = pd.date_range(day, periods=N, freq="s").astype(str)
        frame["heart_rate"] += offset_bpm
        frame.to_csv(path, index=False)
    return folder


def test_personalize_and_predict_take_an_export_folder(tmp_path, tiny_checkpoint):
    """The command line: `personalize --workouts EXPORT_DIR` and `predict ... EXPORT_DIR`, sports from the table."""
    root = tmp_path / "export"
    athlete_folder(root / "activities", 6)
    pd.DataFrame({"Activity Type": ["Run"] * 6, "Filename": [f"activities/{i}.csv" for i in range(6)]}).to_csv(
        root / "activities.csv", index=False
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        me = ["--out", str(tmp_path / "me.pt"), "--steps", "5"]
        assert cli_main(["personalize", "--checkpoint", str(tiny_checkpoint), "--workouts", str(root), *me]) == 0
        assert (
            cli_main(["predict", "--checkpoint", str(tmp_path / "me.pt"), str(root), "--out", str(tmp_path / "p")]) == 0
        )
    text = out.getvalue()
    assert "Personalised 'me' from 6 workouts (0 skipped)" in text
    assert "Predicted 6 workouts from 6 of 6 files" in text
    assert len(list((tmp_path / "p").glob("*_prediction.csv"))) == 6


def test_calibrate_strangers_fits_the_unknown_athletes_band_on_real_folders(tmp_path, tiny_checkpoint):
    """`calibrate --strangers A B C`: the band for an unknown athlete, fitted by athlete, written into the
    checkpoint and used by predict for the mean embedding; one folder alone is refused."""
    import shutil

    ck = shutil.copy(tiny_checkpoint, tmp_path / "ck.pt")
    before = TrainedModel.load(ck).interval_unknown
    assert before is not None and before.fitted_on == "validation athletes, mean embedding"
    folders = [athlete_folder(tmp_path / name, 4, offset) for name, offset in (("a", -15), ("b", 0), ("c", 20))]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(["calibrate", "--checkpoint", str(ck), "--strangers", *map(str, folders)]) == 0
    after = TrainedModel.load(ck).interval_unknown
    assert after.fitted_on.startswith("3 real athletes: a, b, c; level scale pooled") and after.n_workouts == 12
    assert after.n_athletes == 3
    assert after.lower_bpm != before.lower_bpm and after.level_scale_bpm > 0
    preds, _ = predict_files(ck, [folders[0]], write=False, report=lambda *a: None)
    frame = preds[0].frame  # predict uses it for the unknown athlete, and says so
    assert preds[0].user.endswith("band for an athlete the model does not know")
    low = (frame["predicted_low_bpm"] - frame["predicted_heart_rate_bpm"]).iloc[0]
    assert low == pytest.approx(after.lower_bpm[0], abs=0.11)
    assert "Calibrated the band for an athlete" in out.getvalue()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert cli_main(["calibrate", "--checkpoint", str(ck), "--strangers", str(tmp_path / "nobody")]) == 2
    assert "at least 1 athlete" in err.getvalue() and err.getvalue().count("\n") == 1
