"""Baselines: fitted on the training split only, ordered as physiology says, and shown by the CLI."""

import argparse
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from hr_lstm.cli.evaluation import add_baselines_arguments, run_baselines
from hr_lstm.data.fitrec import CHANNELS
from hr_lstm.data.workouts import WorkoutSet
from hr_lstm.errors import HRLSTMError
from hr_lstm.models.baselines import (
    BASELINES,
    NOISE_FLOOR,
    BaselineConfig,
    baseline_table,
    fit,
    fit_baselines,
    kinetics,
    smooth,
)
from hr_lstm.training.config import RunConfig
from hr_lstm.training.prepare import prepare


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def sim_path(tmp_path_factory):
    from hr_lstm.data.simulate import SimConfig, simulate

    path = tmp_path_factory.mktemp("baselines") / "sim.json.gz"
    simulate(SimConfig(n_users=10, seed=11, min_workouts=12, max_workouts=16), path)
    return path


def prepared_for(path, split="user_time"):
    cfg = RunConfig()
    cfg.data.path, cfg.split.kind = str(path), split
    return prepare(cfg, log=quiet)


@pytest.fixture(scope="module")
def prepared(sim_path):
    return prepared_for(sim_path)


@pytest.fixture(scope="module")
def fitted(prepared):
    return fit(prepared, BaselineConfig())


@pytest.fixture(scope="module")
def table(prepared, fitted):
    return baseline_table(prepared, fitted=fitted)


def test_table_has_every_baseline_and_the_noise_floor(table):
    assert list(table.index) == [*BASELINES, NOISE_FLOOR]
    assert list(table.columns) == ["MAE", "RMSE", "R²", "median workout MAE", "fit s"]
    assert table.loc[NOISE_FLOOR, "MAE"] < table.drop(NOISE_FLOOR)["MAE"].min(), "nothing beats the noise floor"


def test_user_mean_and_linear_beat_the_global_mean(table):
    assert table.loc["user_mean", "MAE"] < table.loc["global_mean", "MAE"]
    assert table.loc["linear", "MAE"] < 0.95 * table.loc["global_mean", "MAE"]
    assert table.loc["linear", "R²"] > 0.1


def test_physiological_model_has_plausible_time_constants_and_wins(table, fitted):
    taus = fitted.physio_params[["tau_on_s", "tau_off_s"]]
    assert taus.min().min() >= 10 and taus.max().max() <= 300  # the bounds
    assert 20 <= taus["tau_on_s"].median() <= 150 and 20 <= taus["tau_off_s"].median() <= 200  # simulator: ~45-120 s
    assert table.loc["physiological", "MAE"] < 0.8 * table.loc["user_mean", "MAE"]
    assert table.loc["physiological", "R²"] > 0.5


def test_fitting_sees_only_the_training_split(prepared, fitted):
    """Scrambling validation and test heart rates changes no fitted parameter and no prediction."""
    held_out = np.concatenate([prepared.split.val, prepared.split.test])
    series = prepared.workouts.series.copy()
    rng = np.random.default_rng(0)
    series[held_out, :, CHANNELS.index("heart_rate_bpm")] = rng.uniform(40, 200, (len(held_out), series.shape[1]))
    ws = prepared.workouts
    scrambled = replace(
        prepared,
        workouts=WorkoutSet(series, ws.meta, ws.source, ws.fingerprint),
        target_bpm=torch.from_numpy(np.ascontiguousarray(series[:, :, CHANNELS.index("heart_rate_bpm")])),
    )
    refit = fit(scrambled, BaselineConfig())
    assert refit.global_mean_bpm == fitted.global_mean_bpm and refit.user_mean_bpm == fitted.user_mean_bpm
    np.testing.assert_array_equal(refit.physio_params.to_numpy(), fitted.physio_params.to_numpy())
    everything = prepared.workouts
    for name, pred in fitted.predict(everything).items():
        np.testing.assert_array_equal(refit.predict(everything)[name], pred, err_msg=name)


def test_unknown_users_fall_back_under_the_user_split(sim_path):
    cold = prepared_for(sim_path, split="user")
    cfg = BaselineConfig(baselines=("global_mean", "user_mean", "physiological"), max_nfev=10, cold_start="median")
    model = fit(cold, cfg)
    test_users = set(cold.workouts.meta["user_id"].to_numpy()[cold.split.test])
    assert not test_users & set(model.user_mean_bpm) and not test_users & set(model.physio_params.index)
    pred = fit_baselines(cold, cfg)
    assert set(pred) == set(cfg.baselines) and pred["physiological"].shape == (len(cold.split.test), 500)
    np.testing.assert_allclose(pred["user_mean"], model.global_mean_bpm)  # unknown athlete: the global mean
    median = model.physio_params.median()
    rows = model.physio_rows(sorted(test_users))
    np.testing.assert_allclose(
        rows[["tau_on_s", "base_bpm"]].to_numpy(), np.tile(median[["tau_on_s", "base_bpm"]], (len(rows), 1))
    )
    assert rows.notna().all().all(), "sports nobody trained in still get a gain"


def test_pooled_cold_start_is_one_fit_to_all_training_athletes(sim_path):
    cold = prepared_for(sim_path, split="user")
    model = fit(cold, BaselineConfig(baselines=("physiological",), cold_start="pooled", max_nfev=10))
    pooled = model.cold_start_params()
    assert 10 <= pooled["tau_on_s"] <= 300 and not pooled.equals(model.physio_params.median())
    rows = model.physio_rows(["somebody new"])
    np.testing.assert_allclose(rows.iloc[0].to_numpy(), pooled.to_numpy())


def test_known_user_gets_the_median_gain_for_a_sport_they_never_trained_in(fitted):
    user = fitted.physio_params.index[0]
    row = fitted.physio_rows([user]).iloc[0]
    assert row["tau_on_s"] == fitted.physio_params.loc[user, "tau_on_s"]
    assert row["gain_walk_bpm_per_kmh"] == fitted.cold_start_params()["gain_walk_bpm_per_kmh"]


def test_smoothing_respects_uneven_time_steps():
    dt = np.array([[0.0, 1, 1, 10, 100, 2]])
    t = np.cumsum(dt, axis=1)
    np.testing.assert_allclose(smooth(np.ones_like(dt), dt, 30.0), 1 - np.exp(-t / 30.0), rtol=1e-12)


def test_kinetics_jacobian_matches_finite_differences():
    rng = np.random.default_rng(1)
    design = rng.uniform(0, 1, (3, 40, 8))
    design[:, :, [1, 4, 5]] = 0.0
    dt = np.abs(rng.normal(5, 2, (3, 40)))
    x = np.array([80.0, 95, 5, 40, 30, 70, 20, 9])

    def hr_of(x):
        return kinetics(design @ x, dt, np.full(3, x[1]), x[4], x[5], design)

    jac = hr_of(x)[1]
    for p in range(len(x)):
        step = np.eye(len(x))[p] * 1e-6 * max(1.0, abs(x[p]))
        numeric = (hr_of(x + step)[0] - hr_of(x - step)[0]) / (2 * step[p])
        np.testing.assert_allclose(jac[..., p], numeric, atol=1e-5, err_msg=f"parameter {p}")


def cli(argv):
    parser = argparse.ArgumentParser(prog="hr-lstm baselines")
    add_baselines_arguments(parser)
    return run_baselines(parser.parse_args(argv))


def test_cli_prints_the_table_and_writes_metrics(sim_path, tmp_path, capsys):
    assert cli(["--data", str(sim_path), "--out", str(tmp_path), "--max-nfev", "10"]) == 0
    out = capsys.readouterr().out
    for name in (*BASELINES, NOISE_FLOOR, "MAE", "RMSE", "R²", "Train:"):
        assert name in out, name
    metrics = json.loads((tmp_path / "baselines_metrics.json").read_text())
    assert len(metrics["data_fingerprint"]) == 32 and metrics["hr_lstm_version"]
    assert [row["baseline"] for row in metrics["table"]] == [*BASELINES, NOISE_FLOOR]
    assert metrics["table"][-1]["fit s"] is None and metrics["config"]["max_nfev"] == 10
    assert metrics["n_test"] > 0 and metrics["run_config"]["split"]["kind"] == "user_time"


def test_cli_rejects_unknown_baselines_and_bad_smoothing(sim_path, tmp_path):
    with pytest.raises(HRLSTMError, match="unknown baseline"):
        cli(["--data", str(sim_path), "--out", str(tmp_path), "--baselines", "oracle"])
    with pytest.raises(HRLSTMError, match="smoothing"):
        cli(["--data", str(sim_path), "--out", str(tmp_path), "--smoothing_s", "30,soon"])
    with pytest.raises(HRLSTMError, match="cold start"):
        BaselineConfig(cold_start="oracle")


def test_hr_lstm_baselines_command(sim_path, tmp_path, capsys):
    from hr_lstm.cli import main

    assert (
        main(["baselines", "--data", str(sim_path), "--out", str(tmp_path), "--baselines", "global_mean,user_mean"])
        == 0
    )
    assert "user_mean" in capsys.readouterr().out
    assert main(["baselines", "--data", str(sim_path), "--out", str(tmp_path), "--baselines", "oracle"]) == 2


def test_predictions_in_blocks_match_one_pass(prepared, fitted, monkeypatch):
    import hr_lstm.models.baselines as baselines

    whole = fitted.predict(prepared.workouts)
    monkeypatch.setattr(baselines, "CHUNK", 7)  # FitRec-sized sets are predicted block by block
    for name, pred in fitted.predict(prepared.workouts).items():
        np.testing.assert_allclose(pred, whole[name], rtol=1e-6, err_msg=name)
