"""The per-athlete physiological baseline of the earlier-80% / latest-20% table."""

from __future__ import annotations

import numpy as np
from conftest import make_record, write_fitrec

from hr_lstm.data.features import target
from hr_lstm.inference.workout_files import read_workout_files
from hr_lstm.reporting.athlete import physiological, split_by_date


def test_a_sport_the_earlier_workouts_never_had_gets_the_athletes_mean_not_another_sports_gain(tmp_path):
    """Runs, then a first ride: no bike gain was fitted, so the ride gets the earlier mean heart rate (a run's
    gain at riding speed predicted over 220 BPM); the runs keep the fitted kinetics."""
    runs = [make_record(workout_id=i, start=1_400_000_000 + i * 86_400, seed=i) for i in range(8)]
    ride = make_record(workout_id=9, start=1_400_000_000 + 9 * 86_400, sport="bike", seed=9)
    ride["speed"] = [3 * s for s in ride["speed"]]  # riding at ~30 km/h
    path = write_fitrec(tmp_path / "athlete.json", [*runs, ride])
    data = read_workout_files([path], user_id="a", require_heart_rate=True, report=None)
    earlier, latest = split_by_date(data)
    assert list(latest.workouts.meta["sport"]) == ["run", "bike"]
    pred = physiological(earlier, data, "a")
    earlier_mean = np.nanmean(target(earlier.workouts))
    np.testing.assert_allclose(pred[-1], earlier_mean, rtol=1e-5)
    measured = target(data.workouts)
    assert np.nanmean(np.abs(pred[:-1] - measured[:-1])) < 5.0  # runs: the kinetics fit, close to the truth
    assert np.ptp(pred[-2]) > 1.0  # a latest run is not the constant
