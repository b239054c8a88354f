"""Warm start: the measured minutes up to k correct the rest, and nothing measured after k leaks in."""

from __future__ import annotations

import numpy as np
import pytest

from hr_lstm.models.warm_start import (
    PRIOR_WORKOUTS,
    WarmStartFit,
    after_minutes_mae,
    fit_personal_warm_start,
    fit_warm_start,
    gap_at_k_bpm,
    warm_start_bpm,
    warm_start_table,
)

T = np.arange(0, 3600, 6.0)  # an hour, every 6 s


def curves(seed=0, n=4):
    rng = np.random.default_rng(seed)
    truth = 140 + 10 * np.sin(T / 300)[None, :] + rng.normal(0, 2, (n, len(T)))
    level = rng.normal(0, 8, (n, 1))  # each workout's day form, which the model cannot see
    return truth - level, truth  # prediction, measurement


def test_a_constant_level_error_is_removed_after_minute_k():
    pred, truth = curves()
    true_level = (truth - pred).mean(axis=1)
    offset = gap_at_k_bpm(pred, truth, np.broadcast_to(T, pred.shape), 5)
    np.testing.assert_allclose(offset, true_level, atol=1.5)  # two and a half minutes of 2-BPM noise
    warm = warm_start_bpm(pred, truth, np.broadcast_to(T, pred.shape), 5)
    before = after_minutes_mae(pred, truth, np.broadcast_to(T, pred.shape), 5)
    after = after_minutes_mae(warm, truth, np.broadcast_to(T, pred.shape), 5)
    assert after < 0.5 * before


@pytest.mark.parametrize(
    "fit",
    [None, WarmStartFit(2.0, intercept_bpm=1.5, slope=0.6, n_workouts=9, persistence_s=300.0)],
    ids=["plain", "calibrated, fading"],
)
def test_nothing_measured_after_the_cut_off_reaches_the_prediction(fit):
    pred, truth = curves(seed=1)
    t = np.broadcast_to(T, pred.shape)
    changed = truth.copy()
    changed[:, T >= 120] += np.random.default_rng(2).normal(0, 30, changed[:, T >= 120].shape)
    a, b = warm_start_bpm(pred, truth, t, 2, fit), warm_start_bpm(pred, changed, t, 2, fit)
    np.testing.assert_array_equal(a[:, T >= 120], b[:, T >= 120])
    np.testing.assert_array_equal(a[:, T < 120], truth[:, T < 120])  # before k: what was measured
    assert not np.array_equal(a[:, T >= 120], pred[:, T >= 120])  # ... and it did move the rest


def test_the_prediction_after_k_reads_the_settled_half_of_the_measured_minutes():
    """The gap is read over [k/2, k): what the heart did while still rising does not move the rest."""
    pred, truth = curves(seed=6)
    t = np.broadcast_to(T, pred.shape)
    fit = WarmStartFit(5.0, slope=0.8, n_workouts=9, persistence_s=600.0)
    rising = truth.copy()
    rising[:, T < 150] -= 40  # a slow climb from rest the model did not expect
    a, b = warm_start_bpm(pred, truth, t, 5, fit), warm_start_bpm(pred, rising, t, 5, fit)
    np.testing.assert_array_equal(a[:, T >= 300], b[:, T >= 300])
    settled = truth.copy()
    settled[:, (T >= 150) & (T < 300)] += 10  # today's level, seen once settled
    c = warm_start_bpm(pred, settled, t, 5, fit)
    np.testing.assert_allclose(c[:, T == 300] - a[:, T == 300], 8.0)  # slope 0.8 of it at minute k
    np.testing.assert_allclose(c[:, T == 900] - a[:, T == 900], 8.0 * np.exp(-1.0))  # faded over 600 s


def test_k_zero_is_the_plain_prediction_and_missing_measurements_give_no_offset():
    pred, truth = curves(seed=3)
    t = np.broadcast_to(T, pred.shape)
    np.testing.assert_array_equal(warm_start_bpm(pred, truth, t, 0), pred)
    blank = truth.copy()
    blank[:, T < 300] = np.nan
    np.testing.assert_array_equal(gap_at_k_bpm(pred, blank, t, 5), 0.0)
    row = warm_start_table(pred, truth, t, (0, 5))
    assert row[0]["mae_after_k_bpm"] == row[0]["warm_start_mae_after_k_bpm"]
    assert row[1]["warm_start_mae_after_k_bpm"] < row[1]["mae_after_k_bpm"]


def test_evaluate_reports_the_minutes_after_k_with_and_without(tmp_path):
    from test_architecture import FIXTURES, old_records

    from hr_lstm.evaluation.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(
        FIXTURES / "lstm_embeddings_v0.1.pt",
        str(old_records(tmp_path / "r.json")),
        log=lambda *a: None,
        warm_start_min=(0, 2, 5),
    )
    rows = {row["minutes"]: row for row in result["warm_start"]}
    assert set(rows) == {0.0, 2.0, 5.0}
    assert rows[0.0]["mae_after_k_bpm"] == pytest.approx(result["mae"])
    assert all(np.isfinite(r["warm_start_mae_after_k_bpm"]) for r in rows.values())


def test_predict_command_writes_the_warm_started_curve(tmp_path, capsys):
    from test_architecture import FIXTURES, old_records

    from hr_lstm.cli import main

    data = old_records(tmp_path / "r.json")
    out = tmp_path / "pred"
    ck = str(FIXTURES / "lstm_embeddings_v0.1.pt")
    assert main(["predict", "--checkpoint", ck, str(data), "--out", str(out), "--warm-start-min", "5"]) == 0
    assert "after minute 5:" in capsys.readouterr().out
    import pandas as pd

    frame = pd.read_csv(next(out.glob("*_prediction.csv")))
    early = frame["time_s"] < 300
    assert (frame.loc[early, "warm_start_heart_rate_bpm"] == frame.loc[early, "heart_rate_bpm"]).all()
    assert main(["predict", "--checkpoint", ck, str(data), "--out", str(out), "--warm-start-min", "-1"]) == 2


def test_calibration_learns_how_much_of_the_early_gap_carries_over():
    pred, truth = curves(seed=4, n=40)
    t = np.broadcast_to(T, pred.shape)
    level = fit_warm_start(pred, truth, t, 5)  # the gap is the day's level: it carries over whole, for good
    assert level.slope == pytest.approx(1.0, abs=0.1) and abs(level.intercept_bpm) < 1.0 and level.n_workouts == 40
    assert level.persistence_s is None or level.persistence_s >= 2400
    warm_up = truth.copy()  # the early minutes show only a warm-up the model mispredicts, at random
    warm_up[:, T < 300] += np.random.default_rng(5).normal(0, 10, (40, 1))
    noise = fit_warm_start(truth, warm_up, t, 5)
    assert noise.slope < 0.2
    few = fit_warm_start(pred[:2], truth[:2], t[:2], 5)
    assert (few.intercept_bpm, few.slope) == (0.0, 1.0), "too few workouts: the plain warm start"
    calibrated = warm_start_bpm(truth, warm_up, t, 5, noise)
    plain = warm_start_bpm(truth, warm_up, t, 5)
    assert after_minutes_mae(calibrated, warm_up, t, 5) < 0.5 * after_minutes_mae(plain, warm_up, t, 5)


def test_calibration_learns_how_long_the_gap_lasts_and_can_leave_the_level_alone():
    """A gap that fades (a passing state, or a start the model mistimed) is carried only as long as it lasts;
    without an intercept the fit never shifts the level by itself."""
    rng = np.random.default_rng(7)
    t = np.broadcast_to(T, (40, len(T)))
    truth = 140 + rng.normal(0, 2, t.shape)
    state = rng.normal(0, 8, (40, 1))  # each workout's passing state: fades with a 5-minute time constant
    pred = truth - state * np.exp(-np.clip(t - 300, 0, None) / 300) + 3.0  # and a bias of 3 BPM
    fading = fit_warm_start(pred, truth, t, 5)
    assert fading.persistence_s == 300 and fading.slope > 0.8 and fading.intercept_bpm == pytest.approx(-3, abs=0.5)
    kept = warm_start_bpm(pred, truth, t, 5, WarmStartFit(5.0, fading.intercept_bpm, fading.slope, 40, None))
    faded = warm_start_bpm(pred, truth, t, 5, fading)
    assert after_minutes_mae(faded, truth, t, 5) < 0.5 * after_minutes_mae(kept, truth, t, 5)
    no_level = fit_warm_start(pred, truth, t, 5, intercept=False)
    assert no_level.intercept_bpm == 0.0 and no_level.persistence_s is not None


def test_a_personal_calibration_borrows_the_populations_persistence_and_pulls_its_slope_toward_it():
    """A handful of an athlete's workouts: the prior's persistence, a slope between the athlete's own and the
    prior's (the prior counted as PRIOR_WORKOUTS workouts), never an intercept; too few: the prior alone."""
    pred, truth = curves(seed=4, n=6)  # the gap is all day level: the athlete's own slope is about 1
    t = np.broadcast_to(T, pred.shape)
    prior = WarmStartFit(5.0, 0.0, 0.4, 700, 1200.0)
    own = fit_warm_start(pred, truth, t, 5, intercept=False, persistences=(1200.0,))
    fit = fit_personal_warm_start(pred, truth, t, 5, prior)
    assert fit.persistence_s == 1200.0 and fit.intercept_bpm == 0.0 and fit.n_workouts == 6
    assert fit.slope == pytest.approx((6 * own.slope + PRIOR_WORKOUTS * 0.4) / (6 + PRIOR_WORKOUTS))
    assert 0.4 < fit.slope < own.slope
    few = fit_personal_warm_start(pred[:2], truth[:2], t[:2], 5, prior)
    assert (few.slope, few.persistence_s, few.n_workouts) == (0.4, 1200.0, 2)
    alone = fit_personal_warm_start(pred, truth, t, 5, None)  # no prior stored (an older checkpoint)
    assert alone == fit_warm_start(pred, truth, t, 5, intercept=False)
    uncalibrated = WarmStartFit(5.0, n_workouts=2)  # a prior from a validation split of 2 workouts: ignored
    assert fit_personal_warm_start(pred, truth, t, 5, uncalibrated) == alone


def test_persistence_holds_the_last_measured_minute_before_k():
    from hr_lstm.models.warm_start import persistence_bpm

    t = np.arange(0, 900, 10.0)
    measured = np.where(t < 240, 120.0, np.where(t < 300, 150.0, 170.0))
    measured[3] = np.nan
    held = persistence_bpm(measured, t, 5.0)
    assert np.array_equal(held[t < 300][4:], measured[t < 300][4:])  # measured before k, as known then
    assert np.all(held[t >= 300] == 150.0)  # minute 4-5 held: 20 BPM off from then on
    nothing_late = np.where(t < 120, 130.0, np.nan)
    assert np.all(persistence_bpm(nothing_late, t, 5.0)[t >= 300] == 130.0)  # the last value measured before k


def test_the_prior_alone_when_personalize_asks_for_it():
    """PERSONAL_PRIOR (None): the population's slope and persistence, the athlete's workouts only counted."""
    from hr_lstm.models.warm_start import PERSONAL_PRIOR

    rng = np.random.default_rng(0)
    t = np.tile(np.arange(0, 3600, 10.0), (6, 1))
    pred = np.full_like(t, 150.0)
    truth = pred + rng.normal(0, 8, size=(6, 1)) + rng.normal(0, 2, size=t.shape)
    prior = WarmStartFit(5.0, 0.0, 0.4, 500, 1200.0)
    fit = fit_personal_warm_start(pred, truth, t, 5, prior, PERSONAL_PRIOR)
    assert PERSONAL_PRIOR is None and (fit.slope, fit.persistence_s, fit.n_workouts) == (0.4, 1200.0, 6)
