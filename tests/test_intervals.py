"""The 80% band: coverage counted right, the conformal fit calibrated, and the band through train and predict."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
import torch

from hr_lstm.cli import main as cli_main
from hr_lstm.inference.predict import predict_files, write_prediction
from hr_lstm.models.intervals import (
    IntervalFit,
    band_bpm,
    band_offsets,
    coverage,
    coverage_interval,
    coverage_table,
    fit_intervals,
    fit_intervals_few_workouts,
    fit_intervals_strangers,
)
from hr_lstm.models.warm_start import WarmStartFit
from hr_lstm.training.trained import TrainedModel

TINY = ["--hidden_size", "16", "--num_layers", "1", "--embedding_dim", "4", "--batch_size", "16", "--lr", "0.02"]


def test_coverage_on_a_toy_case():
    measured = np.array([[100.0, 110.0, 120.0, np.nan], [130.0, 140.0, 150.0, 160.0]])
    low = np.full((2, 4), 105.0)
    high = np.full((2, 4), 145.0)
    # inside: 110, 120 (row 0; NaN not counted), 130, 140 (row 1) -> 4 of 7
    assert coverage(measured, low, high) == pytest.approx(4 / 7)
    assert coverage(measured, low, high, mask=np.array([[True] * 4, [False] * 4])) == pytest.approx(2 / 3)
    table = coverage_table(measured, low, high, ["run", "bike"]).set_index("sport")
    assert table.loc["run", "coverage"] == pytest.approx(2 / 3) and table.loc["run", "points"] == 3
    assert table.loc["bike", "coverage"] == pytest.approx(2 / 4)
    assert table.loc["all", "coverage"] == pytest.approx(4 / 7) and table.loc["all", "workouts"] == 2
    assert coverage(np.full(3, 100.0), np.full(3, 100.0), np.full(3, 100.0)) == 1.0  # the edges count as inside


def synthetic(rng, n=400, steps=200):
    """Residuals whose spread grows with elapsed time (sd 2 BPM at the start, 8 after an hour)."""
    time_s = np.tile(np.linspace(0, 5400, steps), (n, 1))
    sd = 2 + 6 * np.clip(time_s / 3600, 0, 1)
    pred = np.full((n, steps), 140.0)
    return pred, pred + rng.normal(0, 1, (n, steps)) * sd, time_s


def test_conformal_fit_covers_80_percent_of_new_draws_and_widens_with_time():
    rng = np.random.default_rng(0)
    fit = fit_intervals(*synthetic(rng))
    pred, measured, time_s = synthetic(rng)  # fresh draws from the same world
    low, high = band_bpm(pred, time_s, fit)
    assert coverage(measured, low, high) == pytest.approx(0.8, abs=0.01)
    early = time_s < 300
    late = time_s > 3600
    assert coverage(measured, low, high, early) == pytest.approx(0.8, abs=0.03)
    assert coverage(measured, low, high, late) == pytest.approx(0.8, abs=0.03)
    width = high - low
    assert width[late].mean() > 2.5 * width[early].mean()
    assert (low <= pred).all() and (pred <= high).all()


def test_a_band_from_five_workouts_covers_80_percent_where_pooled_quantiles_fall_short():
    """Each workout has its own level (the day's form) plus within-workout noise. Pooled point quantiles from 5
    workouts see only 5 levels and undercover new workouts; the workout-level prediction interval does not."""
    rng = np.random.default_rng(0)
    time_s = np.arange(300) * 10.0
    draw = lambda k: rng.normal(0, 5, (k, 1)) + rng.normal(0, 2, (k, 300))  # noqa: E731
    pooled, by_workout = [], []
    for _ in range(60):
        calibration, new = draw(5), draw(40)
        t_cal, t_new = np.tile(time_s, (5, 1)), np.tile(time_s, (40, 1))
        for fit, kept in (
            (fit_intervals(np.zeros_like(calibration), calibration, t_cal), pooled),
            (fit_intervals_few_workouts(np.zeros_like(calibration), calibration, t_cal), by_workout),
        ):
            kept.append(coverage(new, *band_bpm(np.zeros_like(new), t_new, fit)))
    assert 0.77 <= np.mean(by_workout) <= 0.86
    assert np.mean(pooled) < np.mean(by_workout) - 0.05
    with pytest.raises(ValueError, match="at least 2"):
        fit_intervals_few_workouts(np.zeros((1, 5)), np.ones((1, 5)), np.zeros((1, 5)))


def test_sport_families_get_their_own_offsets_when_they_have_the_workouts():
    rng = np.random.default_rng(1)
    pred, measured, time_s = synthetic(rng, n=60)
    sports = np.array(["run"] * 30 + ["bike"] * 30)
    measured[30:] = pred[30:] + 3 * (measured[30:] - pred[30:])  # cyclists' errors three times as wide
    fit = fit_intervals(pred, measured, time_s, sports)
    assert set(fit.by_sport) == {"run", "bike"}
    run_lo, run_hi = band_offsets(time_s[0], fit, "run")
    bike_lo, bike_hi = band_offsets(time_s[0], fit, "mountain bike")  # the bike family's
    assert (bike_hi - bike_lo).mean() > 2 * (run_hi - run_lo).mean()
    walk = band_offsets(time_s[0], fit, "walk")  # no walks: the pooled offsets
    assert np.allclose(
        walk[1], np.asarray(fit.upper_bpm)[np.searchsorted(np.array(fit.edges_min) * 60, time_s[0], "right")]
    )
    assert IntervalFit.from_dict(fit.as_dict()) == fit


@pytest.fixture(scope="module")
def checkpoint(sim_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("band_checkpoint")
    with contextlib.redirect_stdout(io.StringIO()):
        argv = ["train", "--epochs", "2", "--data", str(sim_data), "--out", str(out), "--threads", "1", *TINY]
        assert cli_main(argv) == 0
    return out / "lstm_embeddings_best.pt"


def test_training_calibrates_the_band_on_validation_and_reports_test_coverage(checkpoint):
    model = TrainedModel.load(checkpoint)
    assert model.interval is not None and model.interval.fitted_on == "validation"
    assert model.interval.n_workouts == model.metrics["n_val"]
    assert 0.5 < model.metrics["test_band_coverage"] <= 1.0
    assert set(model.metrics["test_band_coverage_by_sport"]) <= {"run", "bike", "walk", "other"}
    for k in (2, 5):  # the warm start's calibration on the same split, which a personalisation borrows
        prior = model.warm_start_prior(k)
        assert prior.n_workouts == model.metrics["n_val"] and prior.intercept_bpm == 0.0 and 0 <= prior.slope <= 1


def test_predict_writes_the_band_and_old_checkpoints_still_predict(checkpoint, sim_data, tmp_path):
    preds, _ = predict_files(checkpoint, [sim_data], write=False, report=lambda *a: None)
    frame = preds[0].frame
    assert frame["predicted_low_bpm"].notna().all()
    # low < high; the prediction need not lie inside: a biased model's band is shifted by its bias
    assert (frame["predicted_low_bpm"] < frame["predicted_high_bpm"]).all()
    written = pd.read_csv(write_prediction(preds[0], tmp_path).csv_path)
    assert written["predicted_high_bpm"].notna().all()

    payload = torch.load(checkpoint, weights_only=True)
    payload.pop("interval")
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    assert TrainedModel.load(old).interval is None
    preds, _ = predict_files(old, [sim_data], write=False, report=lambda *a: None)
    assert preds[0].frame["predicted_low_bpm"].isna().all() and preds[0].mae is not None


def test_calibrate_gives_an_old_checkpoint_its_band(checkpoint, tmp_path, capsys):
    payload = torch.load(checkpoint, weights_only=True)
    band, warm_start = payload.pop("interval"), payload.pop("warm_start")
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    assert TrainedModel.load(old).warm_start_prior(5) is None
    assert cli_main(["calibrate", "--checkpoint", str(old)]) == 0
    out = capsys.readouterr().out
    assert "validation workouts" in out and "Warm start from minute 5:" in out
    assert TrainedModel.load(old).interval == IntervalFit.from_dict(band)  # the same fit as at training
    assert TrainedModel.load(old).warm_start_prior(5) == WarmStartFit(**warm_start["5"])


def test_a_band_from_another_fits_predictions_is_centred_on_zero_and_widened_by_that_fits_bias():
    """A personalisation calibrates its band on selection workouts predicted by a fit without them, which errs by
    its own bias (here 4 BPM); the refitted model does not. Centred on the levels' mean, the band is shifted by
    that bias and undercovers the refitted model's new workouts; drawn around zero (intercept=False), the bias
    widens it instead. Without a bias, around zero is the textbook interval on n degrees of freedom."""
    rng = np.random.default_rng(2)
    time_s = np.arange(300) * 10.0
    draw = lambda k, bias=0.0: bias + rng.normal(0, 3, (k, 1)) + rng.normal(0, 2, (k, 300))  # noqa: E731
    shifted, around_zero, unbiased = [], [], []
    for _ in range(60):
        calibration, new, fair = draw(6, bias=4.0), draw(40), draw(6)
        t_cal, t_new = np.tile(time_s, (6, 1)), np.tile(time_s, (40, 1))
        for fit, kept in (
            (fit_intervals_few_workouts(np.zeros_like(calibration), calibration, t_cal), shifted),
            (fit_intervals_few_workouts(np.zeros_like(calibration), calibration, t_cal, intercept=False), around_zero),
            (fit_intervals_few_workouts(np.zeros_like(fair), fair, t_cal, intercept=False), unbiased),
        ):
            kept.append(coverage(new, *band_bpm(np.zeros_like(new), t_new, fit)))
    assert np.mean(shifted) < 0.72
    assert np.mean(around_zero) > 0.85
    assert 0.76 <= np.mean(unbiased) <= 0.85


def test_the_coverage_interval_resamples_workouts_not_points():
    """10 workouts whose day levels shift them: the interval holds the pooled coverage and is wide (10 draws of
    a level, not 3,000 points); 100 such workouts give a narrower one; one workout gives none."""
    rng = np.random.default_rng(3)

    def workouts(n):
        measured = 140 + rng.normal(0, 5, (n, 1)) + rng.normal(0, 2, (n, 300))
        return measured, np.full_like(measured, 134.0), np.full_like(measured, 146.0)

    few, many = workouts(10), workouts(100)
    low, high = coverage_interval(*few)
    assert low < coverage(*few) < high and high - low > 0.1
    many_low, many_high = coverage_interval(*many)
    assert many_high - many_low < 0.6 * (high - low)
    assert np.isnan(coverage_interval(*(a[:1] for a in few))).all()


def strangers(levels, n_workouts=12, steps=120, seed=0):
    """Athletes whose errors are their own level, a day level (SD 3) and a within-workout wander (SD 4)."""
    rng = np.random.default_rng(seed)
    parts = []
    for a, level in enumerate(levels):
        day = rng.normal(0, 3, size=(n_workouts, 1))
        residual = level + day + rng.normal(0, 4, size=(n_workouts, steps))
        pred = np.full((n_workouts, steps), 150.0)
        t = np.tile(np.arange(steps) * 30.0, (n_workouts, 1))
        parts.append((pred, pred + residual, t, np.full(n_workouts, f"athlete {a}")))
    return tuple(np.concatenate(p) for p in zip(*parts))


def test_a_band_for_strangers_holds_a_new_athlete_where_the_known_athletes_band_does_not():
    """Athletes' levels -12..+15 BPM: the band of known athletes (their own level removed, as their embedding
    does) holds under a third of a stranger 9 BPM off; the band fitted by athlete holds most of it."""
    pred, measured, t, athlete = strangers([-12, -6, 0, 5, 10, 15])
    fit = fit_intervals_strangers(pred, measured, t, athlete)
    new_pred, new_measured, new_t, _ = strangers([9], seed=1)  # about the athletes' RMS off
    assert 0.7 <= coverage(new_measured, *band_bpm(new_pred, new_t, fit)) <= 0.97
    levels = np.array([(measured - pred)[athlete == a].mean() for a in athlete])
    known = fit_intervals(pred + levels[:, None], measured, t)  # each athlete's level known
    assert coverage(new_measured, *band_bpm(new_pred, new_t, known)) < 0.3


def test_few_athletes_give_a_wider_band_than_many_of_the_same_spread():
    few = fit_intervals_strangers(*strangers([-10, 10]))
    many = fit_intervals_strangers(*strangers([-10, 10] * 10))
    assert few.upper_bpm[0] - few.lower_bpm[0] > 1.2 * (many.upper_bpm[0] - many.lower_bpm[0])
    with pytest.raises(ValueError, match="at least 2 athletes"):
        fit_intervals_strangers(*strangers([5]))


def test_a_band_for_strangers_does_not_depend_on_the_athletes_order():
    pred, measured, t, athlete = strangers([-8, 3, 12])
    flipped = np.arange(len(pred))[::-1]
    a = fit_intervals_strangers(pred, measured, t, athlete)
    b = fit_intervals_strangers(pred[flipped], measured[flipped], t[flipped], athlete[flipped])
    assert a.lower_bpm == b.lower_bpm and a.upper_bpm == b.upper_bpm
