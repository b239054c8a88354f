"""Tests for hr_lstm.data.recordings: real FIT/GPX/TCX files and small synthetic ones."""

from __future__ import annotations

import argparse
import ast
import functools
import gzip
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from hr_lstm.cli import data as cli_data
from hr_lstm.cli import main as cli_main
from hr_lstm.data import recordings
from hr_lstm.data.recordings import (
    FITREC_KEYS,
    ImportResult,
    Recording,
    build_record,
    convert,
    import_recordings,
    read_recording,
    to_fitrec_record,
    write_records,
)
from hr_lstm.errors import DataError, HRLSTMError

REAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "real_workouts"
REAL_FILES = [
    "python-fitparse/activity-small-fenix2-run.fit",
    "python-fitparse/2013-02-06-12-11-14.fit",
    "python-fitparse/developer-types-sample.fit",
    "python-fitparse/Edge810-Vector-2013-08-16-15-35-10.fit",
    "python-fitparse/garmin-edge-500-activity.fit",
    "python-fitparse/2019-02-17-062644-ELEMNT-297E-195-0.fit",
    "python-fitparse/coros-pace-2-cycling-misaligned-fields.fit",
    "runpandas/run.fit",
    "runpandas/basic.tcx",
    "runpandas/2020-12-20T05_50_47-300_Running.tcx",
    "runpandas/0c97d8a7-8081-4609-b92c-5932468d7b8e.gpx",
    "runpandas/1368f9a8-cdbe-4528-a1dc-af90dfddd6fb.gpx",
    "runpandas/16aebccf-cf92-4b85-bf64-b7d2d219396b.gpx",
    "tcxreader/cross-country-skiing_activity_1.tcx",
]
TOO_SHORT = "python-fitparse/garmin-fenix-5-walk.fit"
ELEMNT = "python-fitparse/2019-02-17-062644-ELEMNT-297E-195-0.fit"
COROS = "python-fitparse/coros-pace-2-cycling-misaligned-fields.fit"


def real_path(rel: str) -> Path:
    if not REAL_DIR.is_dir():
        pytest.skip(f"real recordings not found at {REAL_DIR}")
    return REAL_DIR / rel


@functools.lru_cache(maxsize=None)  # each real file is parsed at most once per test session
def _read_cached(path: str) -> Recording:
    return read_recording(path)


def real_recording(rel: str) -> Recording:
    return _read_cached(str(real_path(rel)))


@functools.lru_cache(maxsize=None)
def _record_cached(rel: str, mode: str) -> dict:
    return to_fitrec_record(real_recording(rel), user_id="alice", gender="female", mode=mode)


def real_record(rel: str, mode: str = "uniform") -> dict:
    real_path(rel)
    return _record_cached(rel, mode)


# ------------------------------------------------------------ real recordings


@pytest.mark.parametrize("rel", REAL_FILES)
@pytest.mark.parametrize("mode", ["uniform", "original"])
def test_real_file_becomes_fitrec_record(rel, mode):
    record = real_record(rel, mode)
    assert tuple(record) == FITREC_KEYS
    for key in ("altitude", "heart_rate", "latitude", "longitude", "speed", "timestamp"):
        assert len(record[key]) == 500, key
    for key in ("altitude", "heart_rate", "latitude", "longitude", "speed"):
        assert all(type(v) is float and np.isfinite(v) for v in record[key]), key
    assert all(type(v) is int for v in record["timestamp"])
    hr = np.array(record["heart_rate"])
    assert 40 <= hr.min() and hr.max() <= 220
    speed = np.array(record["speed"])
    assert 0 <= speed.min() and speed.max() <= 100 and np.median(speed) > 2
    ts = np.diff(record["timestamp"])
    assert (ts >= 0).all()
    if mode == "uniform":
        assert (ts > 0).all()
    else:  # a file with fewer than 500 samples repeats some of them; removed artefacts are not there to pick
        _, summary = build_record(real_recording(rel), "me", "unknown", None, 500, mode)
        assert len(set(record["timestamp"])) >= min(500, summary.n_samples) * 0.95
    assert record["userId"] == "alice" and record["gender"] == "female"
    assert isinstance(record["id"], int) and 0 <= record["id"] < 2**53
    assert record["url"].startswith("file://")


def test_fenix_walk_is_refused_as_too_short():
    with pytest.raises(DataError, match=r"^garmin-fenix-5-walk\.fit: recording too short to model \(46 s, 17 "):
        to_fitrec_record(real_recording(TOO_SHORT), user_id="alice")


def test_real_sports_and_units():
    fenix = real_recording("python-fitparse/activity-small-fenix2-run.fit")
    assert fenix.sport == "run" and fenix.file_format == "fit"
    assert fenix.start_time == datetime(2015, 8, 15, 14, 45, 8, tzinfo=timezone.utc)
    assert list(fenix.samples.columns) == list(recordings.SAMPLE_COLUMNS)
    assert fenix.samples["latitude"].iloc[0] == pytest.approx(703410450 * 180 / 2**31)  # semicircles -> deg
    assert fenix.samples["speed_kmh"].iloc[0] == pytest.approx(5.89 * 3.6)  # m/s -> km/h
    assert real_recording("python-fitparse/Edge810-Vector-2013-08-16-15-35-10.fit").sport == "bike"
    assert real_recording("runpandas/basic.tcx").sport == "run"
    assert real_recording("tcxreader/cross-country-skiing_activity_1.tcx").sport == "unknown"  # TCX says "Other"
    stryd = real_recording("python-fitparse/developer-types-sample.fit")  # developer 'Speed' field ignored
    assert stryd.samples["speed_kmh"].iloc[0] == pytest.approx(1.441 * 3.6)


def test_duplicate_time_stamps_merged():
    times = real_recording("python-fitparse/2013-02-06-12-11-14.fit").samples["time_s"]
    assert times.is_unique and times.is_monotonic_increasing and len(times) == 583


def test_basic_tcx_speed_comes_from_distance():
    rec = real_recording("runpandas/basic.tcx")
    assert rec.samples["speed_kmh"].isna().all() and rec.samples["distance_m"].notna().all()
    assert 6 <= np.median(real_record("runpandas/basic.tcx")["speed"]) <= 20


def test_gpx_heart_rate_from_extension():
    rec = real_recording("runpandas/0c97d8a7-8081-4609-b92c-5932468d7b8e.gpx")
    hr = rec.samples["heart_rate_bpm"]
    assert 0.6 < hr.notna().mean() < 0.8
    assert hr.iloc[3] == 138 and rec.samples["time_s"].iloc[3] == pytest.approx(10.586)
    assert 6 <= np.median(real_record("runpandas/0c97d8a7-8081-4609-b92c-5932468d7b8e.gpx")["speed"]) <= 20


def test_coros_with_missing_heart_rate_still_imports():
    rec = real_recording(COROS)
    assert 0.15 < rec.samples["heart_rate_bpm"].isna().mean() < 0.3
    record = real_record(COROS)
    assert rec.sport == "bike" and len(record["heart_rate"]) == 500
    # the record covers only the part with heart rate (the last hour has none)
    assert record["timestamp"][-1] < rec.start_time.timestamp() + rec.duration_s - 3000


def test_elemnt_pauses_kept_as_time_jumps_in_original_mode():
    record = real_record(ELEMNT, "original")
    gaps = np.diff(record["timestamp"])
    assert gaps.max() > 600 and (gaps > 60).sum() >= 3


def test_original_mode_keeps_original_time_stamps():
    rel = "python-fitparse/activity-small-fenix2-run.fit"
    rec = real_recording(rel)
    original = {round(rec.start_time.timestamp() + t) for t in rec.samples["time_s"]}
    assert set(real_record(rel, "original")["timestamp"]) <= original
    uniform = real_record(rel, "uniform")["timestamp"]
    assert not set(uniform) <= original or len(set(uniform)) < 500  # the grid is its own


def test_truncated_fit_is_refused(tmp_path):
    data = real_path("runpandas/run.fit").read_bytes()
    cut = tmp_path / "cut.fit"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"^cut\.fit: truncated FIT file"):
        read_recording(cut)


def test_run_import_on_all_real_files(tmp_path, monkeypatch, capsys):
    paths = [str(real_path(rel)) for rel in [*REAL_FILES, TOO_SHORT]]
    monkeypatch.setattr(convert, "read_recording", _read_cached)
    out = tmp_path / "mine.json.gz"
    assert cli_data.run_import(_cli_args(paths, out)) == 0
    text, err = capsys.readouterr()
    assert "Imported 14 of 15 recordings (1 skipped)" in text
    assert "skipped  garmin-fenix-5-walk.fit: recording too short" in err, "failures go to stderr"
    assert text.count("\nimported ") + text.startswith("imported ") == 14
    assert len(gzip.decompress(out.read_bytes()).decode().splitlines()) == 14


# ------------------------------------------------------- synthetic recordings

T0 = datetime(2024, 5, 1, 7, 0, tzinfo=timezone.utc)


def write_tcx(path: Path, points: list[dict], sport: str = "Running") -> Path:
    """points: dicts with t (s) and optional lat, lon, alt, dist, hr, speed (m/s)."""
    parts = []
    for p in points:
        x = [f"<Time>{(T0 + timedelta(seconds=p['t'])).isoformat().replace('+00:00', 'Z')}</Time>"]
        if "lat" in p:
            x.append(
                f"<Position><LatitudeDegrees>{p['lat']}</LatitudeDegrees>"
                f"<LongitudeDegrees>{p['lon']}</LongitudeDegrees></Position>"
            )
        if "alt" in p:
            x.append(f"<AltitudeMeters>{p['alt']}</AltitudeMeters>")
        if "dist" in p:
            x.append(f"<DistanceMeters>{p['dist']}</DistanceMeters>")
        if "hr" in p:
            x.append(f"<HeartRateBpm><Value>{p['hr']}</Value></HeartRateBpm>")
        if "speed" in p:
            x.append(f"<Extensions><ns3:TPX><ns3:Speed>{p['speed']}</ns3:Speed></ns3:TPX></Extensions>")
        parts.append("<Trackpoint>" + "".join(x) + "</Trackpoint>")
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2" '
        'xmlns:ns3="http://www.garmin.com/xmlschemas/ActivityExtension/v2"><Activities>'
        f'<Activity Sport="{sport}"><Id>x</Id><Lap><Track>{"".join(parts)}</Track></Lap></Activity>'
        "</Activities></TrainingCenterDatabase>\n"
    )
    return path


def run_points(n=400, dt=3.0, speed_ms=3.0, pause_at=None, pause_s=0.0, **drop):
    """A steady run: n samples every dt s at speed_ms, optional pause after sample pause_at."""
    points, t, dist = [], 0.0, 0.0
    for i in range(n):
        if i == pause_at:
            t += pause_s
        p = {
            "t": t,
            "lat": 45.0 + dist / 111_195.0,
            "lon": 7.0,
            "alt": 200 + i * 0.1,
            "dist": round(dist, 2),
            "hr": 100 + i % 50,
        }
        for key, which in drop.items():
            if which(i):
                p.pop(key, None)
        points.append(p)
        t += dt
        dist += speed_ms * dt
    return points


def test_speed_from_distance_and_from_positions(tmp_path):
    by_dist = read_recording(write_tcx(tmp_path / "d.tcx", run_points()))
    assert np.median(to_fitrec_record(by_dist, "bob")["speed"]) == pytest.approx(10.8, abs=0.1)
    by_pos = read_recording(write_tcx(tmp_path / "p.tcx", run_points(dist=lambda i: True)))
    assert np.median(to_fitrec_record(by_pos, "bob")["speed"]) == pytest.approx(10.8, abs=0.1)


def test_pause_zero_speed_and_time_jump(tmp_path):
    rec = read_recording(write_tcx(tmp_path / "pause.tcx", run_points(n=499, dt=2, pause_at=250, pause_s=600)))
    uniform = to_fitrec_record(rec, "bob", mode="uniform")
    gaps = np.diff(uniform["timestamp"])
    assert gaps.max() > 250  # the time stamps jump over the pause
    speed = np.array(uniform["speed"])
    assert (speed == 0).sum() >= 1 and np.median(speed) == pytest.approx(10.8, abs=0.1)
    assert np.all(speed[speed > 0] > 10)  # no speed smeared across the pause
    original = to_fitrec_record(rec, "bob", mode="original")
    assert np.diff(original["timestamp"]).max() >= 600
    assert original["timestamp"][0] == int(T0.timestamp())


def test_heart_rate_gaps_short_filled_long_dropped(tmp_path):
    pts = run_points(n=600, dt=1, hr=lambda i: (100 <= i < 110) or (300 <= i < 400))
    rec = read_recording(write_tcx(tmp_path / "gaps.tcx", pts))
    record, summary = convert.build_record(rec, "bob", "male", None, 500, "original")
    assert summary.n_samples == 500 and "100 samples without heart rate dropped" in summary.notes


def test_missing_altitude_and_positions(tmp_path):
    rec = read_recording(write_tcx(tmp_path / "noalt.tcx", run_points(alt=lambda i: True, lat=lambda i: True)))
    record, summary = convert.build_record(rec, "bob", "male", None, 500, "uniform")
    # absent, not sea level: the keys are left out and the import says which channels are missing
    assert not {"altitude", "latitude", "longitude"} & set(record) and summary.missing_channels == [
        "altitude",
        "positions",
    ]
    assert any("lacks altitude and positions" in n for n in summary.notes)
    partly = read_recording(write_tcx(tmp_path / "partalt.tcx", run_points(alt=lambda i: i % 3 == 0)))
    assert 200 <= min(to_fitrec_record(partly, "bob")["altitude"])
    bare = read_recording(write_tcx(tmp_path / "bare.tcx", run_points(lat=lambda i: True, dist=lambda i: True)))
    with pytest.raises(DataError, match=r"^bare\.tcx: no speed, distance or positions"):
        to_fitrec_record(bare, "bob")


def test_gzipped_gpx_with_namespaced_extension(tmp_path):
    pts = "".join(
        f'<trkpt lat="{45 + i * 1e-4}" lon="7"><ele>{100 + i}</ele>'
        f"<time>{(T0 + timedelta(seconds=5 * i)).isoformat()}</time><extensions><tp:TrackPointExtension>"
        f"<tp:hr>{120 + i % 30}</tp:hr></tp:TrackPointExtension></extensions></trkpt>"
        for i in range(100)
    )
    gpx = (
        '<gpx xmlns="http://www.topografix.com/GPX/1/1" version="1.1" creator="t" '
        'xmlns:tp="http://www.garmin.com/xmlschemas/TrackPointExtension/v2">'
        f"<trk><type>cycling</type><trkseg>{pts}</trkseg></trk></gpx>"
    )
    path = tmp_path / "ride.gpx.gz"
    path.write_bytes(gzip.compress(gpx.encode()))
    rec = read_recording(path)
    assert rec.file_format == "gpx" and rec.sport == "bike"
    assert rec.samples["heart_rate_bpm"].tolist()[:3] == [120, 121, 122]
    assert len(to_fitrec_record(rec, "bob", seq_len=50)["speed"]) == 50


@pytest.mark.parametrize(
    "case",
    [
        "text_as_fit",
        "csv",
        "gpx_no_time",
        "no_hr",
        "little_hr",
        "too_short",
        "missing",
        "directory",
        "empty",
        "bad_xml",
    ],
)
def test_bad_input_gives_one_line_data_error(tmp_path, case):
    path = (
        tmp_path
        / {
            "text_as_fit": "notes.fit",
            "csv": "run.csv",
            "gpx_no_time": "notime.gpx",
            "no_hr": "nohr.tcx",
            "little_hr": "littlehr.tcx",
            "too_short": "short.tcx",
            "missing": "nowhere.fit",
            "directory": "folder.fit",
            "empty": "empty.gpx",
            "bad_xml": "broken.tcx",
        }[case]
    )
    if case == "text_as_fit":
        path.write_text("this is not a FIT file\n" * 10)
    elif case == "csv":
        path.write_text("time,hr\n0,120\n1,121\n")
    elif case == "gpx_no_time":
        path.write_text(
            '<gpx xmlns="http://www.topografix.com/GPX/1/1" version="1.1" creator="t"><trk><trkseg>'
            + '<trkpt lat="45" lon="7"><ele>1</ele></trkpt>' * 5
            + "</trkseg></trk></gpx>"
        )
    elif case == "no_hr":
        write_tcx(path, run_points(hr=lambda i: True))
    elif case == "little_hr":
        write_tcx(path, run_points(hr=lambda i: i % 3 != 0))
    elif case == "too_short":
        write_tcx(path, run_points(n=50, dt=2))
    elif case == "directory":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "bad_xml":
        path.write_text('<TrainingCenterDatabase xmlns="x"><Activities><Trackpoint>')
    with pytest.raises(DataError) as info:
        to_fitrec_record(read_recording(path), "bob")
    message = str(info.value)
    assert path.name in message and "\n" not in message and isinstance(info.value, HRLSTMError)
    expected = {
        "text_as_fit": "not a FIT, GPX, TCX or CSV",
        "csv": "nothing says when it started",
        "gpx_no_time": "no time stamps",
        "no_hr": "no heart rate",
        "little_hr": "heart rate in only 34%",
        "too_short": "too short to model",
        "missing": "no such file",
        "directory": "is a directory",
        "empty": "not a FIT, GPX, TCX or CSV",
        "bad_xml": "not a valid TCX file",
    }[case]
    assert expected in message


def test_bad_arguments_raise_value_error(tmp_path):
    rec = read_recording(write_tcx(tmp_path / "ok.tcx", run_points()))
    for kwargs in ({"mode": "sideways"}, {"gender": "x"}, {"seq_len": 1}):
        with pytest.raises(ValueError):
            to_fitrec_record(rec, "bob", **kwargs)
    assert to_fitrec_record(rec, 7, workout_id=42)["id"] == 42


def test_workout_id_is_stable_hash_of_bytes(tmp_path):
    a = read_recording(write_tcx(tmp_path / "a.tcx", run_points()))
    b = read_recording(write_tcx(tmp_path / "b.tcx", run_points()))
    c = read_recording(write_tcx(tmp_path / "c.tcx", run_points(n=401)))
    assert a.content_hash == b.content_hash != c.content_hash and 0 <= a.content_hash < 2**53


@pytest.mark.parametrize("name", ["records.json", "records.json.gz"])
def test_write_records_round_trips_with_literal_eval(tmp_path, name):
    rec = read_recording(write_tcx(tmp_path / "a.tcx", run_points()))
    records = [to_fitrec_record(rec, "bob", seq_len=20), to_fitrec_record(rec, 3, seq_len=20, mode="original")]
    out = write_records(records, tmp_path / "out" / name)
    raw = out.read_bytes()
    text = (gzip.decompress(raw) if name.endswith(".gz") else raw).decode()
    lines = text.splitlines()
    assert [ast.literal_eval(line) for line in lines] == records
    assert lines[0].startswith("{'altitude': [") and "'userId': 'bob'}" in lines[0]
    assert [p.name for p in out.parent.iterdir()] == [name]  # no temp file left behind


def _cli_args(files, out, *extra):
    parser = argparse.ArgumentParser()
    cli_data.add_import_arguments(parser)
    return parser.parse_args([*map(str, files), "--user", "carol", "--out", str(out), *extra])


def test_run_import_exit_codes_and_summary(tmp_path, capsys):
    good = [write_tcx(tmp_path / f"run{i}.tcx", run_points(n=300 + i)) for i in range(2)]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n")
    out = tmp_path / "mine.json"
    assert cli_data.run_import(_cli_args([*good, bad], out, "--gender", "female", "--mode", "original")) == 0
    text, err = capsys.readouterr()
    assert "imported run0.tcx:" in text and "skipped  bad.csv: not a FIT, GPX, TCX or CSV" in err
    assert "Imported 2 of 3 recordings (1 skipped)" in text
    records = [ast.literal_eval(line) for line in out.read_text().splitlines()]
    assert [r["userId"] for r in records] == ["carol", "carol"] and records[0]["gender"] == "female"

    none_out = tmp_path / "none.json"
    assert cli_data.run_import(_cli_args([bad, tmp_path / "missing.fit"], none_out)) == 2
    assert "Imported 0 of 2 recordings (2 skipped)" in capsys.readouterr().out
    assert not none_out.exists()


def test_import_recordings_result(tmp_path):
    good = write_tcx(tmp_path / "good.tcx", run_points())
    result = import_recordings([good, tmp_path / "nope.gpx"], user_id="dan", gender="male", seq_len=100)
    assert isinstance(result, ImportResult) and len(result.records) == 1
    assert result.skipped == [(tmp_path / "nope.gpx", f"{tmp_path / 'nope.gpx'}: no such file")]
    assert result.imported[0].sport == "run" and result.imported[0].speed_source == "distance"


def test_cli_arguments(capsys):
    parser = argparse.ArgumentParser()
    cli_data.add_import_arguments(parser)
    args = parser.parse_args(["a.fit", "b.gpx", "--user", "erin", "--out", "x.json.gz"])
    assert (args.files, args.user, args.gender, args.mode, args.seq_len) == (
        ["a.fit", "b.gpx"],
        "erin",
        "unknown",
        "uniform",
        500,
    )
    for bad in (
        ["a.fit", "--out", "x"],
        ["a.fit", "--user", "u", "--out", "x", "--seq-len", "1"],
        ["a.fit", "--user", "u", "--out", "x", "--gender", "other"],
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    assert "at least 2" in capsys.readouterr().err


def test_absent_altitude_reads_as_unknown_and_the_features_treat_it_as_missing(tmp_path):
    from hr_lstm.data.cache import load_workouts
    from hr_lstm.data.features import FeatureConfig, Normalizer, build_inputs

    with_alt = to_fitrec_record(read_recording(write_tcx(tmp_path / "a.tcx", run_points())), "bob")
    without = to_fitrec_record(read_recording(write_tcx(tmp_path / "b.tcx", run_points(alt=lambda i: True))), "bob")
    out = write_records([with_alt, without], tmp_path / "both.json")
    ws = load_workouts(out, cache=False, log=lambda *a: None)
    altitude = ws.channel("altitude_m")
    assert np.isfinite(altitude[0]).all() and np.isnan(altitude[1]).all()
    cfg = FeatureConfig(inputs=("speed", "altitude", "altitude_change", "grade"))
    norm = Normalizer(mean=[10.0, 300.0, 0.0, 0.0], std=[2.0, 50.0, 1.0, 0.05])
    inputs = build_inputs(ws, cfg, norm)
    assert np.isfinite(inputs).all()
    # the missing altitude becomes the training mean (0 after scaling), not sea level (-6 SD here)
    assert (inputs[1, :, 1:] == 0).all() and not (inputs[0, :, 1] == 0).all()


@pytest.mark.parametrize("speed_kmh, sport", [(5.0, "walk"), (11.0, "run"), (26.0, "bike")])
def test_a_file_without_sport_gets_the_family_its_speeds_suggest(tmp_path, speed_kmh, sport):
    rec = read_recording(write_tcx(tmp_path / "nosport.tcx", run_points(speed_ms=speed_kmh / 3.6), sport="Other"))
    record, summary = convert.build_record(rec, "bob", "male", None, 500, "uniform")
    assert record["sport"] == sport and summary.sport_source == "inferred"
    assert any(f"{sport} inferred from the median moving speed" in n for n in summary.notes)
    given, summary = convert.build_record(rec, "bob", "male", None, 500, "uniform", sport="mountain bike")
    assert given["sport"] == "mountain bike" and summary.sport_source == "given"


def test_import_command_takes_sport(tmp_path, capsys):
    path = write_tcx(tmp_path / "nosport.tcx", run_points(), sport="Other")
    out = tmp_path / "r.json"
    assert cli_main(["import", str(path), "--user", "me", "--sport", "bike", "--out", str(out)]) == 0
    assert ast.literal_eval(out.read_text().splitlines()[0])["sport"] == "bike"


def test_import_will_not_write_over_a_recording_it_reads(tmp_path):
    good = write_tcx(tmp_path / "run0.tcx", run_points())
    before = good.read_bytes()
    with pytest.raises(HRLSTMError, match="is one of the recordings to import"):
        cli_data.run_import(_cli_args([good], good))
    assert good.read_bytes() == before
