"""lstm_kinetic: an LSTM demand passed through per-athlete first-order heart-rate kinetics."""

from __future__ import annotations

import contextlib
import io
from dataclasses import replace

import numpy as np
import pytest
import torch

from hr_lstm.cli import main as cli_main
from hr_lstm.data.features import step_change
from hr_lstm.errors import HRLSTMError
from hr_lstm.inference.finetune import RUNGS, PersonalizeConfig, rung_weights
from hr_lstm.inference.personalize import personalize
from hr_lstm.kinetics import first_order_hr
from hr_lstm.models.kinetic import HRLSTMKinetic, kinetic_hr
from hr_lstm.models.lstm import UNKNOWN_USER, ModelConfig, build_model
from hr_lstm.reporting.your_workouts import simulated_new_athlete
from hr_lstm.training.config import RunConfig
from hr_lstm.training.prepare import configure_model, prepare
from hr_lstm.training.trained import TrainedModel

TINY = ["--hidden_size", "16", "--num_layers", "2", "--embedding_dim", "4", "--batch_size", "16", "--lr", "0.02"]
FAST = dict(steps=20, weight_steps=10, eval_every=5, selection_patience=10, steps_without_selection=5)
quiet = lambda *a: None  # noqa: E731


def _workouts(n=4, seq_len=400, seed=0):
    """Demand stepping between easy and hard, noisy (so it crosses heart rate often), at uneven steps."""
    rng = np.random.default_rng(seed)
    t = np.arange(seq_len)
    hard = np.sin(t[None] / 40 + rng.uniform(0, 6, (n, 1))) > 0
    demand_bpm = 100 + 60 * hard + rng.normal(0, 3, (n, seq_len))
    dt_s = rng.integers(1, 10, (n, seq_len)).astype(float)
    dt_s[:, 0] = 0
    return demand_bpm, dt_s, np.array([20.0, 40.0, 60.0, 90.0])[:n], np.array([30.0, 80.0, 90.0, 150.0])[:n]


def test_the_layer_is_the_numpy_law():
    demand_bpm, dt_s, tau_on_s, tau_off_s = _workouts()
    expected, _ = first_order_hr(demand_bpm, dt_s, demand_bpm[:, 0], tau_on_s, tau_off_s)
    hr_bpm = kinetic_hr(*(torch.tensor(a) for a in (demand_bpm, dt_s, tau_on_s, tau_off_s)))
    np.testing.assert_allclose(hr_bpm.numpy(), expected, rtol=1e-12)


def test_the_hand_written_gradient_matches_finite_differences():
    demand_bpm, dt_s, tau_on_s, tau_off_s = (torch.tensor(a) for a in _workouts(n=3, seq_len=60))
    inputs = (demand_bpm.requires_grad_(), tau_on_s.requires_grad_(), tau_off_s.requires_grad_())
    assert torch.autograd.gradcheck(lambda d, on, off: kinetic_hr(d, dt_s, on, off), inputs)


def test_gradients_reach_both_time_constants():
    demand_bpm, dt_s, tau_on_s, tau_off_s = (torch.tensor(a, dtype=torch.float32) for a in _workouts())
    tau_on_s.requires_grad_(True)
    tau_off_s.requires_grad_(True)
    kinetic_hr(demand_bpm, dt_s, tau_on_s, tau_off_s).sum().backward()
    for grad in (tau_on_s.grad, tau_off_s.grad):
        assert torch.isfinite(grad).all() and (grad.abs() > 0).all()


def test_gradients_reach_the_kinetic_head_through_the_model():
    cfg = ModelConfig(model="lstm_kinetic", n_inputs=3, hidden_size=8, num_layers=1, n_users=3, time_step_column=2)
    model = build_model(cfg)
    x = torch.randn(2, 50, 3)
    model(x, torch.tensor([1, 2])).sum().backward()
    assert model.kinetic_head.weight.grad.abs().sum() > 0 and model.kinetic_head.bias.grad.abs().sum() > 0
    assert model.user_embedding.weight.grad[1:3].abs().sum() > 0


def test_without_the_time_step_input_the_error_is_one_line():
    with pytest.raises(HRLSTMError, match="needs the time_step input") as raised:
        build_model(ModelConfig(model="lstm_kinetic"))
    assert "\n" not in str(raised.value)


def test_configure_model_finds_the_time_step_column_behind_multi_column_inputs(sim_data):
    inputs = ("sport", "speed", "time_step", "altitude")  # sport is a 4-column one-hot
    cfg = RunConfig().override({"data.path": str(sim_data), "features.inputs": inputs})
    data = prepare(cfg, quiet)
    configure_model(cfg, data)
    assert cfg.model.time_step_column == 5
    model = build_model(replace(cfg.model, model="lstm_kinetic"))
    expected_s = np.clip(step_change(data.workouts.channel("time_s")), 0, 600)
    np.testing.assert_allclose(model.step_seconds(data.inputs).numpy(), expected_s, atol=1e-3)


@pytest.fixture(scope="module")
def kinetic_checkpoint(sim_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("kinetic")
    argv = ["train", "--model", "lstm_kinetic", "--epochs", "2", "--data", str(sim_data), "--out", str(out)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main([*argv, *TINY, "--device", "cpu", "--threads", "1"]) == 0
    return out / "lstm_kinetic_best.pt"


def test_a_trained_checkpoint_loads_and_predicts_known_and_unknown_athletes(kinetic_checkpoint, sim_data):
    trained = TrainedModel.load(kinetic_checkpoint)
    assert isinstance(trained.model, HRLSTMKinetic) and trained.has_embedding
    data = prepare(RunConfig().override({"data.path": str(sim_data)}), quiet)
    rows = data.split.test[:6]
    known = trained.predict_bpm(data.workouts, rows=rows)
    assert known.shape == (6, data.inputs.shape[1]) and np.isfinite(known).all()
    assert 40 < known.mean() < 220
    unknown = trained.predict_bpm(data.workouts, users=torch.full((6,), UNKNOWN_USER), rows=rows)
    assert np.isfinite(unknown).all() and not np.allclose(known, unknown)


def test_a_cold_start_athlete_gets_the_mean_athletes_kinetics(kinetic_checkpoint):
    model = TrainedModel.load(kinetic_checkpoint).model
    table = model.user_embedding.weight.detach()
    mean_tau_s = model.kinetic_head(table[1:].mean(dim=0, keepdim=True)).exp()[0]
    tau_on_s, tau_off_s = model.time_constants_s(torch.tensor([UNKNOWN_USER]))
    torch.testing.assert_close(torch.stack([tau_on_s[0], tau_off_s[0]]).detach(), mean_tau_s.detach())


@pytest.fixture(scope="module")
def athlete(tmp_path_factory):
    return simulated_new_athlete(tmp_path_factory.mktemp("athlete"), seed=2024)


@pytest.mark.parametrize("rung", RUNGS)
def test_every_personalisation_rung_runs_and_reloads(kinetic_checkpoint, athlete, rung, tmp_path):
    out, config = tmp_path / f"{rung}.pt", PersonalizeConfig(rung=rung, **FAST)
    result = personalize(kinetic_checkpoint, [athlete], out, "new", config=config, report=quiet)
    assert result.rung == rung and np.isfinite(result.mae_after)
    personal = TrainedModel.load(out)
    assert isinstance(personal.model, HRLSTMKinetic) and personal.user_ids[-1] == "new"
    if rung == "head":
        assert {"kinetic_head.weight", "kinetic_head.bias"} <= set(rung_weights(personal.model, rung))


def test_training_without_the_time_step_input_stops_with_one_line(sim_data, tmp_path, capsys):
    argv = ["train", "--model", "lstm_kinetic", "--data", str(sim_data), "--out", str(tmp_path)]
    assert cli_main([*argv, "--features", "original", *TINY, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "needs the time_step input" in err and err.count("\n") == 1 and "Traceback" not in err
