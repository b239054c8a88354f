"""The personalisation ladder: embedding, head, full, blend; chosen on the latest workouts before the held-out one."""

from __future__ import annotations

import contextlib
import io
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch

from hr_lstm.cli import main as cli_main
from hr_lstm.data.features import target
from hr_lstm.data.fitrec import iter_records
from hr_lstm.data.recordings import write_records
from hr_lstm.inference import ladder as ladder_module
from hr_lstm.inference import personalize as personalize_module
from hr_lstm.inference.finetune import RUNGS, PersonalizeConfig, fit_weights, model_with_new_user, rung_weights
from hr_lstm.inference.ladder import choose_rung, selection_split
from hr_lstm.inference.personalize import athlete_workouts, personalize
from hr_lstm.reporting.your_workouts import simulated_new_athlete
from hr_lstm.training.config import TrainConfig
from hr_lstm.training.trained import TrainedModel

TINY = [
    "--hidden_size",
    "16",
    "--num_layers",
    "2",  # two layers, so `head` has a first layer to leave alone
    "--embedding_dim",
    "4",
    "--batch_size",
    "16",
    "--lr",
    "0.02",
    "--device",
    "cpu",
] + (["--threads", "1"] if "threads" in {f.name for f in fields(TrainConfig)} else [])
FAST = dict(steps=40, weight_steps=15, eval_every=5, selection_patience=10, steps_without_selection=8)
quiet = lambda *a: None  # noqa: E731


@pytest.fixture(scope="module")
def base_checkpoint(sim_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ladder_checkpoint")
    with contextlib.redirect_stdout(io.StringIO()):
        argv = ["train", "--model", "lstm_embeddings", "--epochs", "2", "--data", str(sim_data), "--out", str(out)]
        assert cli_main([*argv, *TINY]) == 0
    return out / "lstm_embeddings_best.pt"


@pytest.fixture(scope="module")
def athlete(tmp_path_factory) -> Path:
    """A simulated athlete the checkpoint never saw (8 workouts: 7 before the held-out one)."""
    return simulated_new_athlete(tmp_path_factory.mktemp("ladder_athlete"), seed=2024)


@pytest.fixture(scope="module")
def earliest_four(athlete, tmp_path_factory) -> Path:
    """The athlete's 4 earliest workouts: 3 before the held-out one, too few for a selection set."""
    records = sorted((r for _, _, r in iter_records(athlete)), key=lambda r: r["timestamp"][0])
    return write_records(records[:4], tmp_path_factory.mktemp("four") / "four.json.gz")


@pytest.fixture(scope="module")
def by_rung(base_checkpoint, athlete, tmp_path_factory) -> dict:
    """Each rung forced, and auto, on the same athlete: {rung: (result, log)}."""
    out, results = tmp_path_factory.mktemp("ladder_out"), {}
    for rung in (*RUNGS, "auto"):
        log = []
        config = PersonalizeConfig(rung=rung, **FAST)
        result = personalize(
            base_checkpoint, [athlete], out / f"{rung}.pt", "athlete", config=config, report=log.append
        )
        results[rung] = result, "\n".join(log)
    return results


def state(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.parametrize("rung", RUNGS)
def test_each_rung_writes_a_loadable_checkpoint_that_changes_the_new_users_predictions(rung, by_rung, base_checkpoint):
    result, log = by_rung[rung]
    assert result.rung == rung and f"rung '{rung}'" in log
    personalised, base = TrainedModel.load(result.checkpoint), TrainedModel.load(base_checkpoint)
    assert personalised.user_ids[-1] == "athlete" and personalised.personalisation["rung"] == rung
    workouts = result.workouts.workouts  # user_id 'athlete': the new row there, the mean embedding in the base
    after, before = personalised.predict_bpm(workouts), base.predict_bpm(workouts)
    assert after.shape == before.shape and np.isfinite(after).all()
    assert np.abs(after - before).mean() > 0.01, rung
    held_out = result.workouts.names.index(result.held_out)
    mae = float(np.abs(after[held_out] - target(workouts)[held_out]).mean())
    assert mae == pytest.approx(result.mae_after, abs=1e-3)


def test_the_checkpoint_records_the_rung_the_ladder_and_the_config(by_rung):
    result, _ = by_rung["head"]
    info = torch.load(result.checkpoint, weights_only=True)["metrics"]["personalisation"]
    assert info["rung"] == "head" and info["rung_reason"].startswith("asked for (rung=head)")
    assert info["config"]["rung"] == "head" and info["config"]["weight_steps"] == FAST["weight_steps"]
    assert [r["rung"] for r in info["ladder"]] == ["embedding", "head"]
    assert [r["chosen"] for r in info["ladder"]] == [False, True]
    assert all(isinstance(r["selection_mae"], float) and r["steps"] >= 0 for r in info["ladder"])
    assert info["selection_workouts"] == result.selection_workouts


def test_head_changes_only_the_head_the_last_lstm_layer_and_the_new_row(base_checkpoint, earliest_four, tmp_path):
    config = PersonalizeConfig(rung="head", **FAST)  # 3 workouts: no selection set, a fixed number of steps
    result = personalize(base_checkpoint, [earliest_four], tmp_path / "head.pt", "a", config=config, report=quiet)
    before, after = state(base_checkpoint), state(result.checkpoint)
    tuned = {"head.weight", "head.bias", "lstm.weight_ih_l1", "lstm.weight_hh_l1", "lstm.bias_ih_l1", "lstm.bias_hh_l1"}
    assert set(rung_weights(TrainedModel.load(base_checkpoint).model, "head")) == tuned
    changed = {k for k in before if k != "user_embedding.weight" and not torch.equal(before[k], after[k])}
    assert changed == tuned, changed
    old, new = before["user_embedding.weight"], after["user_embedding.weight"]
    assert torch.equal(new[:-1], old) and not torch.equal(new[-1], old[1:].mean(dim=0))


def test_blend_is_the_weight_average_of_the_head_and_full_fits(base_checkpoint, earliest_four, tmp_path):
    saved = {}
    for rung in ("head", "full", "blend"):  # 3 workouts: no selection set, the same fixed steps for each fit
        config = PersonalizeConfig(rung=rung, **FAST)
        personalize(base_checkpoint, [earliest_four], tmp_path / f"{rung}.pt", "a", config=config, report=quiet)
        saved[rung] = state(tmp_path / f"{rung}.pt")
    for name, blended in saved["blend"].items():
        torch.testing.assert_close(blended, (saved["head"][name] + saved["full"][name]) / 2, msg=name)
    # the first layer: untouched by head, so the blend moves it half as far as full did
    base = state(base_checkpoint)["lstm.weight_ih_l0"]
    torch.testing.assert_close(
        saved["blend"]["lstm.weight_ih_l0"] - base, (saved["full"]["lstm.weight_ih_l0"] - base) / 2
    )
    assert not torch.equal(saved["blend"]["lstm.weight_ih_l0"], base)


def test_full_with_a_huge_pull_stays_close_to_the_base_weights(base_checkpoint, earliest_four, tmp_path):
    def deviation(l2: float) -> tuple[float, set]:
        config = PersonalizeConfig(rung="full", l2_toward_weights=l2, **FAST)
        personalize(base_checkpoint, [earliest_four], tmp_path / f"full_{l2:g}.pt", "a", config=config, report=quiet)
        before, after = state(base_checkpoint), state(tmp_path / f"full_{l2:g}.pt")
        keys = [k for k in before if k != "user_embedding.weight"]
        assert all(torch.isfinite(after[k]).all() for k in keys)
        changed = {k for k in keys if not torch.equal(before[k], after[k])}
        return max(float((after[k] - before[k]).abs().max()) for k in keys), changed

    (free, changed), (pulled, _) = deviation(0.0), deviation(1e6)
    assert changed == set(rung_weights(TrainedModel.load(base_checkpoint).model, "full"))  # every weight moves
    # Adam moves a weight by about its learning rate per step whatever the gradient's size: held at the
    # pre-trained value it only dithers around it, while an unpulled fit walks away step after step.
    assert pulled <= 2 * PersonalizeConfig().weight_lr, pulled
    assert free > 3 * pulled, (free, pulled)


def test_auto_with_three_workouts_uses_only_the_embedding_rung(base_checkpoint, earliest_four, tmp_path):
    log = []
    config = PersonalizeConfig(**FAST)
    auto = personalize(base_checkpoint, [earliest_four], tmp_path / "auto.pt", "a", config=config, report=log.append)
    assert len(auto.train_workouts) == 3 and auto.held_out is not None
    assert auto.rung == "embedding" and auto.ladder == [] and auto.selection_workouts == []
    assert "fewer than 4" in auto.rung_reason and "Ladder" not in "\n".join(log)
    forced = personalize(
        base_checkpoint,
        [earliest_four],
        tmp_path / "emb.pt",
        "a",
        config=PersonalizeConfig(rung="embedding", **FAST),
        report=quiet,
    )
    assert auto.mae_after == forced.mae_after and auto.steps_run == forced.steps_run
    a, b = state(auto.checkpoint), state(forced.checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_forced_rung_without_a_selection_set_runs_its_fixed_steps(base_checkpoint, earliest_four, tmp_path):
    config = PersonalizeConfig(rung="head", **FAST)
    result = personalize(base_checkpoint, [earliest_four], tmp_path / "head.pt", "a", config=config, report=quiet)
    assert result.rung == "head" and result.ladder == [] and "no selection set" in result.rung_reason
    embedding_only = PersonalizeConfig(rung="embedding", **FAST)
    alone = personalize(base_checkpoint, [earliest_four], tmp_path / "e.pt", "a", config=embedding_only, report=quiet)
    assert result.steps_run == alone.steps_run + FAST["steps_without_selection"]


@pytest.mark.parametrize("n", range(0, 70))
def test_the_selection_set_is_the_latest_fifth_and_only_with_four_or_more(n):
    fit, selection = selection_split(n, PersonalizeConfig())
    assert np.array_equal(np.concatenate([fit, selection]), np.arange(n))
    if n < 4:
        assert len(selection) == 0
    else:
        assert 1 <= len(selection) == max(1, round(0.2 * n)) and len(fit) >= 3


def test_the_selection_set_never_includes_the_held_out_workout(by_rung):
    for rung in ("head", "full", "auto"):
        result, log = by_rung[rung]
        names = result.workouts.names  # time order; the held-out one is the latest
        assert result.held_out == names[-1] and result.held_out not in result.selection_workouts
        assert result.held_out not in result.train_workouts
        k = len(result.selection_workouts)
        assert k == max(1, round(0.2 * len(result.train_workouts)))
        assert result.selection_workouts == result.train_workouts[-k:] == names[-1 - k : -1]
        assert f"the latest {k} of the {len(result.train_workouts)} workouts" in log


def test_choose_rung_blends_unless_the_embedding_alone_scores_lower():
    assert choose_rung({"embedding": 5.0, "head": 4.0, "full": 4.2, "blend": 4.1}) == "blend"  # not the lowest
    assert choose_rung({"embedding": 5.0, "head": 4.5, "full": 4.0, "blend": 4.2}) == "blend"
    assert choose_rung({"embedding": 4.0, "head": 4.5, "full": 4.6, "blend": 4.3}) == "embedding"


def test_auto_fits_every_rung_and_chooses_by_the_selection_maes(by_rung):
    result, log = by_rung["auto"]
    maes = {r["rung"]: r["selection_mae"] for r in result.ladder}
    assert list(maes) == list(RUNGS) and result.rung == choose_rung(maes)
    assert [r["chosen"] for r in result.ladder] == [r == result.rung for r in RUNGS]
    assert "rung       selection MAE  steps" in log and f"rung '{result.rung}':" in log


def fix_ladder(monkeypatch, **selection_maes: float) -> None:
    """`run_ladder` replaced by fixed scores: steps 30 (embedding), 5 (head), 4 (full), 9 (blend)."""
    steps = {"embedding": 30, "head": 5, "full": 4, "blend": 9}
    ladder = [{"rung": r, "selection_mae": mae, "steps": steps[r], "seconds": 0.0} for r, mae in selection_maes.items()]
    monkeypatch.setattr(ladder_module, "run_ladder", lambda *a, **k: [dict(r) for r in ladder])


def test_auto_refits_head_and_full_for_their_steps_and_saves_the_blend(base_checkpoint, athlete, tmp_path, monkeypatch):
    """With the ladder's scores fixed (full lowest, blend under embedding), auto saves `blend`: head and full
    refitted on every workout before the held-out one, each for its own step count, and averaged."""
    fix_ladder(monkeypatch, embedding=9.0, head=8.0, full=7.0, blend=7.2)
    calls = []
    real_fit_weights = ladder_module.fit_weights
    monkeypatch.setattr(ladder_module, "fit_weights", lambda *a, **k: calls.append((a, k)) or real_fit_weights(*a, **k))
    result = personalize(base_checkpoint, [athlete], tmp_path / "auto.pt", "a", config=PersonalizeConfig(**FAST))
    assert (
        result.rung == "blend"
        and "selection MAE 7.2 BPM" in result.rung_reason
        and "'full' scored 7.0" in result.rung_reason
    )
    assert [k["steps"] for _, k in calls] == [5, 4]  # head, then full
    before, after = state(base_checkpoint), state(result.checkpoint)
    assert not torch.equal(before["lstm.weight_ih_l0"], after["lstm.weight_ih_l0"])  # the first layer too (full's half)


def test_auto_keeps_the_embedding_when_it_scores_lower_than_the_blend(base_checkpoint, athlete, tmp_path, monkeypatch):
    fix_ladder(monkeypatch, embedding=6.0, head=6.5, full=5.9, blend=6.1)
    result = personalize(base_checkpoint, [athlete], tmp_path / "auto.pt", "a", config=PersonalizeConfig(**FAST))
    assert result.rung == "embedding" and "scores lower (6.0 BPM) than the blend (6.1)" in result.rung_reason
    before, after = state(base_checkpoint), state(result.checkpoint)
    assert torch.equal(before["lstm.weight_ih_l0"], after["lstm.weight_ih_l0"])


def test_fit_weights_keeps_the_step_with_the_lowest_selection_mae(base_checkpoint, athlete):
    base = TrainedModel.load(base_checkpoint)
    data = athlete_workouts(base, [athlete], "a", "unknown", report=quiet)
    x, y = base.inputs(data.workouts), torch.from_numpy(np.ascontiguousarray(target(data.workouts)))
    model, config = model_with_new_user(base.model, base.payload["config"]["model"])
    row = config["n_users"]
    mean = model.user_embedding.weight.detach()[row].clone()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = PersonalizeConfig(weight_steps=12, eval_every=3, selection_patience=100, weight_lr=1e-2)
    names = rung_weights(model, "full")
    fit = fit_weights(
        model, x[:5], y[:5], row, mean, torch.full_like(mean, 0.1), mean, 20.0, names, cfg, x[5:7], y[5:7]
    )
    steps = [s for s, _ in fit.curve]
    assert steps == [0, 3, 6, 9, 12] and fit.steps_run == 12
    best_step, best_mae = min(fit.curve, key=lambda c: (c[1], c[0]))
    assert (fit.steps, fit.selection_mae) == (best_step, best_mae)
    assert set(fit.weights) == set(names)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the model is left alone


def test_the_warm_start_is_calibrated_on_workouts_predicted_without_fitting_them(
    base_checkpoint, athlete, tmp_path, monkeypatch
):
    """The selection set as the rung fitted without it predicts it, and the held-out workout: never the
    workouts the saved model fitted (there its gap is smaller and shorter-lived than on a new workout)."""
    calls = []
    real_fit = personalize_module.fit_personal_warm_start
    spy = lambda *a, **k: calls.append((a, k)) or real_fit(*a, **k)  # noqa: E731
    monkeypatch.setattr(personalize_module, "fit_personal_warm_start", spy)
    config = PersonalizeConfig(rung="head", **FAST)
    result = personalize(base_checkpoint, [athlete], tmp_path / "head.pt", "a", config=config, report=quiet)
    (pred, measured, _, _, prior, *_), kwargs = calls[-1]
    names, k = result.workouts.names, len(result.selection_workouts)
    rows = [names.index(n) for n in (*result.selection_workouts, result.held_out)]
    assert k >= 1 and prior == TrainedModel.load(base_checkpoint).warm_start_prior(5) and prior is not None
    np.testing.assert_array_equal(measured, target(result.workouts.workouts)[rows])
    final = TrainedModel.load(result.checkpoint).predict_bpm(result.workouts.workouts)  # user 'a': the new row
    assert np.abs(pred[:k] - final[rows[:k]]).max() > 0.01, "the selection set comes from the fit without it"
    np.testing.assert_allclose(pred[k:], final[rows[k:]], atol=1e-3)  # the held-out one: the saved model's
    stored = torch.load(result.checkpoint, weights_only=True)["metrics"]["personalisation"]["warm_start"]
    assert set(stored) == {"2", "5"}
    assert all(s["n_workouts"] == k + 1 and s["intercept_bpm"] == 0.0 and "persistence_s" in s for s in stored.values())


def test_a_personal_band_needs_four_unseen_workouts_and_is_fitted_by_workout(
    by_rung, base_checkpoint, athlete, tmp_path
):
    # 7 workouts before the held-out one select on 1 by default: 2 unseen predictions, too few; the generic band stays
    result, _ = by_rung["auto"]
    assert TrainedModel.load(result.checkpoint).interval == TrainedModel.load(base_checkpoint).interval
    config = PersonalizeConfig(rung="embedding", selection_fraction=0.5, **FAST)  # 4 select, + the held-out one
    result = personalize(base_checkpoint, [athlete], tmp_path / "band.pt", "athlete", config=config, report=quiet)
    band = TrainedModel.load(result.checkpoint).interval
    assert band.fitted_on == "personal selection, by workout, around zero"
    assert band.n_workouts == 5  # the athlete's own unseen workouts alone
    assert all(hi - lo > 1.0 for lo, hi in zip(band.lower_bpm, band.upper_bpm))
