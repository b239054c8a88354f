"""Reading FitRec files: every packaging, derived speed, and every kind of bad input."""

import gzip
import json
import math

import numpy as np
import pytest
from conftest import make_record, write_fitrec

from hr_lstm.data.cache import load_workouts
from hr_lstm.data.fitrec import CHANNELS, ParseConfig, derive_speed_kmh, haversine_m
from hr_lstm.errors import DataError

RECORDS = [make_record(workout_id=i, user_id=i % 2, seed=i, with_speed=i != 2) for i in range(4)]


@pytest.mark.parametrize("style", ["python", "jsonl", "array"])
@pytest.mark.parametrize("gz", [False, True])
def test_every_packaging_reads_the_same(tmp_path, style, gz):
    path = write_fitrec(tmp_path / f"d.{style}{'.gz' if gz else ''}", RECORDS, style=style, gz=gz)
    ws = load_workouts(path, cache=False, log=lambda *a: None)
    assert ws.series.shape == (4, 500, len(CHANNELS)) and ws.series.dtype == np.float32
    assert list(ws.meta["id"]) == ["0", "1", "2", "3"]
    assert list(ws.meta["has_device_speed"]) == [True, True, False, True]
    np.testing.assert_allclose(ws.channel("heart_rate_bpm")[1], RECORDS[1]["heart_rate"])
    assert ws.channel("time_s")[0, 0] == 0


def test_apostrophe_in_a_string_falls_back_to_literal_parsing(tmp_path):
    rec = make_record()
    rec["sport"] = "runner's choice"
    ws = load_workouts(write_fitrec(tmp_path / "a.json", [rec]), cache=False, log=lambda *a: None)
    assert ws.meta["sport"][0] == "runner's choice"


def test_haversine_matches_hand_computation():
    # One degree of latitude on the mean-radius sphere: R * pi / 180.
    assert haversine_m(np.array([0.0, 1.0]), np.array([0.0, 0.0]))[0] == pytest.approx(6_371_008.8 * math.pi / 180)
    # 0.01 degrees of longitude at 60 N is half as long as at the equator.
    at_60 = haversine_m(np.array([60.0, 60.0]), np.array([10.0, 10.01]))[0]
    at_0 = haversine_m(np.array([0.0, 0.0]), np.array([10.0, 10.01]))[0]
    assert at_60 == pytest.approx(at_0 / 2, rel=1e-3)


def test_derived_speed_from_positions_and_clipping():
    t = np.array([0.0, 10.0, 20.0, 20.0, 30.0])
    lat = np.array([0.0, 0.0005, 0.001, 0.001, 0.5])  # last step is a GPS jump
    speed = derive_speed_kmh(t, lat, np.zeros(5), speed_max_kmh=100.0)
    expected = 6_371_008.8 * math.radians(0.0005) / 10 * 3.6  # ~20 km/h
    assert speed[1] == pytest.approx(expected, rel=1e-6)
    assert speed[0] == speed[1]  # first point copies the second
    assert speed[3] == speed[2]  # repeated timestamp carries the previous speed
    assert speed[4] == 100.0  # impossible speed clipped


def test_missing_speed_is_derived_close_to_device_speed(tmp_path):
    with_speed = make_record(seed=5)
    without = make_record(seed=5, with_speed=False)
    ws = load_workouts(write_fitrec(tmp_path / "d.json", [with_speed, without]), cache=False, log=lambda *a: None)
    device, derived = ws.channel("speed_kmh")[0], ws.channel("speed_kmh")[1]
    assert np.median(np.abs(derived[1:] - device[1:]) / device[1:]) < 0.02


def test_other_lengths_are_resampled(tmp_path):
    rec = make_record(n=120)
    ws = load_workouts(
        write_fitrec(tmp_path / "d.json", [rec]), ParseConfig(seq_len=500), cache=False, log=lambda *a: None
    )
    assert ws.series.shape == (1, 500, len(CHANNELS))
    assert ws.channel("time_s")[0, -1] == pytest.approx(rec["timestamp"][-1] - rec["timestamp"][0])


def test_cache_is_reused_and_invalidated(tmp_path):
    path = write_fitrec(tmp_path / "d.json.gz", RECORDS)
    lines = []
    first = load_workouts(path, log=lines.append)
    second = load_workouts(path, log=lines.append)
    assert "cache" in lines[-1] and np.array_equal(first.series, second.series)
    assert first.fingerprint == second.fingerprint
    write_fitrec(path, RECORDS[:2])  # the source changed: the old cache must not be used
    third = load_workouts(path, log=lines.append)
    assert len(third) == 2 and third.fingerprint != first.fingerprint
    caches = list((tmp_path / "d.json.gz.hrcache").iterdir())
    assert all((c / "manifest.json").exists() for c in caches) and not any(c.name.startswith(".tmp") for c in caches)


def _bad(tmp_path, name, content: bytes):
    p = tmp_path / name
    p.write_bytes(content)
    return p


GOOD_LINE = str(make_record()).encode()


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.json", b"", "file is empty"),
        ("blank.json", b"\n\n  \n", "no records"),
        ("malformed.json", GOOD_LINE + b"\n{'altitude': [1, 2,\n", "line 2: malformed record"),
        ("notworkout.csv", b"time,hr\n0,120\n", "not a FitRec workout file"),
        ("binary.bin", bytes(range(256)) * 4, "not"),
        ("listofints.json", b"[1, 2, 3]", "record 1: expected a workout record"),
        ("unclosed.json", b"[" + json.dumps(make_record()).encode() + b", ", "not closed"),
    ],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path, name, content, message):
    path = _bad(tmp_path, name, content)
    with pytest.raises(DataError) as err:
        load_workouts(path, log=lambda *a: None)
    text = str(err.value)
    assert str(path) in text and message in text and "\n" not in text
    assert not (tmp_path / f"{name}.hrcache").exists(), "no partial cache after a failure"


def test_truncated_gzip(tmp_path):
    data = gzip.compress(("\n".join(str(make_record(workout_id=i)) for i in range(5))).encode())
    path = _bad(tmp_path, "cut.json.gz", data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.json\.gz: truncated or corrupt gzip"):
        load_workouts(path, log=lambda *a: None)
    assert not (tmp_path / "cut.json.gz.hrcache").exists()


def _mutated(**changes):
    rec = make_record()
    for key, value in changes.items():
        if value is None:
            del rec[key]
        else:
            rec[key] = value
    return rec


@pytest.mark.parametrize(
    "record, message",
    [
        (_mutated(heart_rate=None), "line 2: missing key(s) 'heart_rate'"),
        (_mutated(altitude=[1.0] * 499), "unequal lengths (timestamp=500, altitude=499"),
        (_mutated(heart_rate=[None] * 3 + [120.0] * 497), "'heart_rate' has 3 None/NaN values (first at index 0)"),
        (_mutated(speed=[float("nan")] + [10.0] * 499), "'speed' has 1 None/NaN values"),
        (_mutated(speed=None, latitude=None), "no 'speed' and no 'latitude'/'longitude'"),
        (_mutated(altitude="high"), "'altitude' should be a list"),
        (_mutated(heart_rate=["a"] * 500), "'heart_rate' has non-numeric values"),
    ],
)
def test_bad_records_name_the_line(tmp_path, record, message):
    path = tmp_path / "d.json"
    path.write_text(str(make_record()) + "\n" + str(record).replace("nan", "None") + "\n")
    with pytest.raises(DataError) as err:
        load_workouts(path, log=lambda *a: None)
    assert f"{path}: line 2" in str(err.value) and message in str(err.value)
    assert not (tmp_path / "d.json.hrcache").exists()


def test_skip_bad_skips_with_a_count(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(
        str(make_record()) + "\n" + str(_mutated(heart_rate=None)) + "\n" + str(make_record(workout_id=3)) + "\n"
    )
    lines = []
    ws = load_workouts(path, skip_bad=True, log=lines.append)
    assert len(ws) == 2
    assert any("Skipped 1 bad records" in line and "line 2" in line for line in lines)


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_workouts(tmp_path / "nope.json.gz")
    with pytest.raises(DataError, match="is a directory"):
        load_workouts(tmp_path)
