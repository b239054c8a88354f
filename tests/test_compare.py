"""The bootstrap comparison of two models on the same workouts."""

import numpy as np
import pytest

from hr_lstm.compare import Difference, mae_difference


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
