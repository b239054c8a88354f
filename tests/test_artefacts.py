"""Heart-rate artefacts in real recordings: spikes, a sensor still settling, dropouts; removed and counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hr_lstm.data.recordings import build_record, read_recording
from hr_lstm.data.recordings.artefacts import artefact_note, heart_rate_artefacts
from tests.test_recordings import run_points, write_tcx


def steady_run(n=1200):
    """1 Hz: a heart rising from 70 toward 160 with a one-minute time constant."""
    t = np.arange(n, dtype=float)
    return t, 160 - 90 * np.exp(-t / 60)


def test_a_clean_rise_from_rest_is_left_alone():
    t, hr = steady_run()
    clean, counts = heart_rate_artefacts(t, hr)
    assert counts == {"spikes": 0, "settling": 0} and np.array_equal(clean, hr)
    assert artefact_note(counts) is None


def test_spikes_are_removed_and_counted():
    t, hr = steady_run()
    hr[[400, 401, 800]] += 45  # a strap losing contact for a moment
    hr[900] -= 60
    clean, counts = heart_rate_artefacts(t, hr)
    assert counts["spikes"] == 4 and np.isnan(clean[[400, 401, 800, 900]]).all()
    assert np.isfinite(np.delete(clean, [400, 401, 800, 900])).all()


def test_a_sensor_still_settling_after_the_first_minute_is_removed_not_the_first_minute():
    t, hr = steady_run()
    hr[:150] = 75.0  # a dry strap reads rest for 2.5 minutes while the runner runs
    clean, counts = heart_rate_artefacts(t, hr)
    assert counts["settling"] == 90  # minute 1 to 2.5; the first minute may be a heart at rest
    assert np.isfinite(clean[:60]).all() and np.isnan(clean[60:150]).all() and np.isfinite(clean[150:]).all()
    note = artefact_note(counts, out_of_range=3)
    assert note.startswith("heart-rate readings removed: 3 outside 25-250 BPM (dropouts)") and "90 of a sensor" in note


def test_the_import_says_what_it_removed(tmp_path):
    """Dropouts to 0 and spikes in a TCX: the import's notes count them; the record holds neither."""
    points = run_points()
    for i, p in enumerate(points):
        p["hr"] = 0 if i in (50, 51) else 220 if i == 120 else 130 + (i % 7)
    path = write_tcx(tmp_path / "run.tcx", points)
    record, summary = build_record(read_recording(path), "me", "unknown", None, 500, "original")
    note = next(n for n in summary.notes if n.startswith("heart-rate readings removed"))
    assert "2 outside 25-250 BPM (dropouts)" in note and "1 spikes" in note
    assert max(record["heart_rate"]) < 200 and min(record["heart_rate"]) > 100


def test_sentinel_altitudes_and_speeds_are_missing_not_values(tmp_path):
    """Altitudes of 1e30 and 4294967295 m and a 250 km/h speed: removed and said, never used as values."""
    import re

    from tests.test_predict_personalize import gpx
    from tests.test_streams_export import fit_record_csv

    path = gpx(tmp_path / "run.gpx")
    elevations = list(re.finditer(r"<ele>[^<]*</ele>", path.read_text()))
    text = path.read_text()
    for i, sentinel in ((120, "4294967295"), (40, "1e30")):  # from the back, so the offsets hold
        m = elevations[i]
        text = text[: m.start()] + f"<ele>{sentinel}</ele>" + text[m.end() :]
    path.write_text(text)
    record, summary = build_record(read_recording(path), "me", "unknown", None, 500, "uniform")
    assert max(record["altitude"]) < 300 and any("altitudes outside -500..9,000 m" in n for n in summary.notes)

    stream = fit_record_csv(tmp_path / "ride.csv")
    frame = pd.read_csv(stream)
    frame.loc[300:305, "enhanced_speed"] = 70.0  # m/s
    frame.to_csv(stream, index=False)
    record, summary = build_record(read_recording(stream), "me", "unknown", None, 500, "uniform")
    assert max(record["speed"]) < 12 and summary.sport == "run"
    assert any("6 speeds over 100 km/h" in n for n in summary.notes)


def test_a_clock_that_was_never_set_is_refused(tmp_path):
    from hr_lstm.errors import DataError
    from tests.test_predict_personalize import gpx

    for year in ("1970", "9999"):
        path = gpx(tmp_path / f"run{year}.gpx")
        path.write_text(path.read_text().replace("2021-05-01", f"{year}-05-01"))
        with pytest.raises(DataError, match=f"run{year}.gpx: starts on {year}-05-01"):
            read_recording(path)


def test_files_people_hand_over_that_once_failed(tmp_path):
    """UTF-16 GPX, a link that loops, a one-point GPX, a TCX whose distance runs backwards, a pipe."""
    import os
    import threading

    from hr_lstm.errors import DataError
    from hr_lstm.inference.workout_files import read_workout_files
    from tests.test_predict_personalize import gpx
    from tests.test_recordings import run_points, write_tcx

    good = gpx(tmp_path / "run.gpx")
    utf16 = tmp_path / "utf16.gpx"
    utf16.write_bytes(
        good.read_text().replace("<gpx ", '<?xml version="1.0" encoding="UTF-16"?><gpx ', 1).encode("utf-16")
    )
    assert len(read_recording(utf16).samples) == len(read_recording(good).samples)

    loop = tmp_path / "loop.gpx"
    loop.symlink_to(loop)
    with pytest.raises(DataError, match="a symbolic link that leads to no file"):
        read_recording(loop)

    one = tmp_path / "one.gpx"
    text = good.read_text()
    one.write_text(
        text[: text.index("<trkpt")] + text[text.index("<trkpt") : text.index("</trkpt>") + 8] + "</trkseg></trk></gpx>"
    )
    with pytest.raises(DataError, match="a single sample"):
        build_record(read_recording(one), "me", "unknown", None, 500, "uniform")

    points = run_points()
    for i, p in enumerate(points):
        p["dist"] = 5000.0 - 3.0 * i  # a distance counting down
    backwards = write_tcx(tmp_path / "backwards.tcx", points)
    record, summary = build_record(read_recording(backwards), "me", "unknown", None, 500, "uniform")
    assert summary.speed_source == "positions (the distance went backwards)" and np.median(record["speed"]) > 9

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(good.read_bytes()))
    writer.start()
    data = read_workout_files([fifo], report=lambda *a: None)
    writer.join(timeout=10)
    assert len(data) == 1 and not data.skipped
