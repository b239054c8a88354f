"""Time stamps that go backwards: FitRec workouts dropped by the filters with a count, recordings re-sorted
with a note; repeated time stamps (as in the public file) stay fine."""

from __future__ import annotations

import pytest
from conftest import make_record, write_fitrec
from test_recordings import run_points, write_tcx

from hr_lstm.data.cache import load_workouts
from hr_lstm.data.filters import FilterConfig, apply_filters
from hr_lstm.data.recordings import build_record, read_recording


def reversed_record(workout_id=2):
    record = make_record(workout_id=workout_id, seed=workout_id)
    stamps = record["timestamp"]
    stamps[100:110] = stamps[100:110][::-1]  # ten points recorded in reverse order
    return record


@pytest.mark.parametrize("workers", [1, 2])
def test_a_record_whose_time_goes_backwards_is_dropped_with_a_count(tmp_path, workers):
    records = [make_record(workout_id=i, user_id=7, start=1_400_000_000 + 86400 * i) for i in range(1, 12)]
    records[4] = reversed_record(5)
    path = write_fitrec(tmp_path / "w.json", records)
    ws = load_workouts(path, cache=False, log=lambda *a: None, workers=workers)
    kept, report = apply_filters(ws, FilterConfig())
    assert "5" not in set(kept.meta["id"]) and len(kept) == 10
    assert report.dropped["time stamps going backwards"] == 1 and "1 time stamps going backwards" in report.summary()


def test_repeated_time_stamps_stay_fine(tmp_path):
    record = make_record(workout_id=1)
    record["timestamp"][50] = record["timestamp"][49]
    ws = load_workouts(write_fitrec(tmp_path / "r.json", [record]), cache=False, log=lambda *a: None)
    kept, report = apply_filters(ws, FilterConfig(min_workouts_per_user=1))
    assert len(kept) == 1 and report.dropped["time stamps going backwards"] == 0


def test_a_recording_out_of_time_order_is_re_sorted_and_the_import_says_so(tmp_path):
    points = run_points()
    points[200]["t"], points[201]["t"] = points[201]["t"], points[200]["t"]  # two samples swapped
    record, summary = build_record(
        read_recording(write_tcx(tmp_path / "swap.tcx", points)), "me", "male", None, 500, "uniform"
    )
    assert any("re-sorted 1 sample whose time stamps went backwards" in note for note in summary.notes)
    assert all(b >= a for a, b in zip(record["timestamp"], record["timestamp"][1:]))
    clean = build_record(
        read_recording(write_tcx(tmp_path / "ok.tcx", run_points())), "me", "male", None, 500, "uniform"
    )[1]
    assert not any("re-sorted" in note for note in clean.notes)
