"""The bootstrap comparison of two models on the same workouts."""

import numpy as np
import pytest

from hr_lstm.evaluation.compare import Difference, mae_difference


def _data(seed=0, athletes=40, per=5, steps=100):
    rng = np.random.default_rng(seed)
    true = 140 + 15 * rng.normal(size=(athletes * per, steps))
    return rng, true, np.repeat([f"u{i}" for i in range(athletes)], per)


def test_a_clearly_better_model_is_detected_and_the_interval_holds_the_truth():
    rng, true, athletes = _data()
    a = true + rng.normal(0, 6, true.shape)
    b = true + rng.normal(0, 4, true.shape)
    d = mae_difference(a, b, true, athletes, names=("wide", "narrow"))
    expected = (4 - 6) * np.sqrt(2 / np.pi)  # MAE of a normal error is sd * sqrt(2/pi)
    assert d.ci_low_bpm < d.difference_bpm < d.ci_high_bpm < 0 and d.significant
    assert d.ci_low_bpm < expected < d.ci_high_bpm
    assert d.mae_b - d.mae_a == pytest.approx(d.difference_bpm)
    assert d.n_athletes == 40 and d.n_workouts == 200 and "narrow better" in d.line()
    assert Difference.from_dict(d.as_dict()) == d


def test_athletes_not_workouts_are_resampled():
    """One athlete with a huge error difference: resampling workouts would give a narrow interval,
    resampling athletes knows it all rests on one person."""
    rng, true, athletes = _data(athletes=20, per=10)
    a = true + rng.normal(0, 5, true.shape)
    b = a.copy()
    b[athletes == "u0"] += 20
    d = mae_difference(a, b, true, athletes)
    assert d.difference_bpm > 0.5 and d.ci_low_bpm < 0.05 and not d.significant  # a workout bootstrap: ±0.1


def test_identical_models_differ_by_exactly_zero():
    rng, true, athletes = _data()
    a = true + rng.normal(0, 5, true.shape)
    d = mae_difference(a, a.copy(), true, athletes)
    assert (d.difference_bpm, d.ci_low_bpm, d.ci_high_bpm) == (0.0, 0.0, 0.0) and not d.significant
    with pytest.raises(ValueError, match="do not match"):
        mae_difference(a[:3], a, true, athletes)


def test_error_along_the_workout_is_binned_by_minutes_not_samples():
    """Two workouts sampled at different rates: an error that starts at minute 10 must show from
    minute 10 in both, although that is sample 300 in one and sample 60 in the other."""
    from hr_lstm.reporting.analysis import error_by_time

    time_min = np.stack([np.arange(500) * 2 / 60, np.arange(500) * 10 / 60])  # 2 s and 10 s sampling
    true = np.full((2, 500), 150.0)
    pred = true + np.where(time_min >= 10, 4.0, 0.0)
    table = error_by_time({"model": pred}, true, time_min, bin_min=2.0, min_points=1)
    early, late = table[table["minute"] < 10], table[table["minute"] > 10]
    assert (early["mae_bpm"] == 0).all() and (late["mae_bpm"] == 4).all()
    assert table["n_points"].sum() == 1000 and table["minute"].max() < 500 * 10 / 60
