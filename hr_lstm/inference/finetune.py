"""Fitting a new athlete's rung: an embedding row alone, or the row with some of the network's weights.

`personalize` (which rung, on which workouts, and what is saved) and `ladder` (the rungs compared on
the athlete's latest workouts) build on these; nothing here reads files or chooses. Every fit leaves
the model it is given unchanged and returns what it found.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from ..errors import HRLSTMError
from ..models.lstm import ModelConfig, build_model

RUNGS = ("embedding", "head", "full", "blend")  # each adapts more than the one before
RUNG_CHOICES = ("auto", *RUNGS)
# `blend` is the weight-space average of these two fits (a "model soup" / WiSE-FT: fine-tunings of one
# pre-trained network, averaged in weight space, generalise better than either alone).
BLEND_OF = ("head", "full")
# The output heads the `head` rung tunes: the heart rate's (the demand's, for lstm_kinetic) and the
# time constants' of lstm_kinetic.
HEAD_MODULES = ("head.", "kinetic_head.")
RUNG_WHAT = {
    "embedding": "the embedding",
    "head": "the embedding, the output head and the last LSTM layer",
    "full": "the embedding and every weight",
    "blend": "the embedding and every weight, halfway between the head and full fits",
}


@dataclass
class PersonalizeConfig:
    steps: int = 200  # most Adam steps on the new embedding row
    lr: float = 0.1  # in units of the trained athletes' embedding spread
    l2_toward_mean: float = 0.05  # weight of mean(((row - mean) / spread)²) next to the squared error / output scale²
    patience: int = 30  # stop after this many steps without a `min_rel_improvement` lower training loss
    min_rel_improvement: float = 1e-3
    # The latest ones; bounds the time per step (linear in it). Of three real runners only D had more than 64:
    # all his 71 instead of the latest 64 gave 9.67 against 9.82 BPM on his latest runs (docs/benchmarks.md).
    max_train_workouts: int = 128
    threads: int = 1  # CPU threads while fitting: a small LSTM's step is fastest (and 20x less contended) on one
    seed: int = 0
    # The ladder. "auto": blend, unless the embedding alone scores lower on the selection set (`choose_rung`);
    # a rung's name forces it.
    rung: str = "auto"
    selection_fraction: float = 0.2  # the latest ~20% of the workouts before the held-out one (at least 1)
    min_ladder_workouts: int = 4  # fewer workouts before the held-out one: no selection set, `embedding` alone
    # head / full: Adam on the weights (the row keeps `lr`), started from the embedding rung's row.
    weight_steps: int = 60  # most steps; the selection set stops them earlier (a step is one pass over all)
    weight_lr: float = 1e-3  # absolute; trained LSTM weights have an RMS of ~0.1-0.15, so ~1% of it per step
    # Pull toward the pre-trained weights: l2_toward_weights * mean over the tuned weights of
    # ((w - w0) / scale)², scale the RMS of the pre-trained weight matrix of w's layer (a bias uses its
    # matrix's: a lone near-zero bias would otherwise be pinned). The loss is mean((error / output_scale)²),
    # so with 1.0 moving every tuned weight by 10% of its layer's scale costs 0.01, the loss of a 2 BPM RMS
    # error at a 20 BPM output scale: a broad drift must buy a gain of that size, while a few weights may
    # still move a lot. Early stopping on the selection set is the main guard against overfitting.
    l2_toward_weights: float = 1.0
    eval_every: int = 5  # steps between selection-set MAEs
    selection_patience: int = 20  # stop after this many steps without a lower selection MAE
    steps_without_selection: int = 20  # a forced head/full rung with no selection set: this many steps


def model_with_new_user(model, model_config: dict) -> tuple[torch.nn.Module, dict]:
    """A copy of `model` with one more embedding row, set to the mean embedding; returns (model, new model config)."""
    table = model.user_embedding.weight.detach()
    mean = table[1:].mean(dim=0) if table.shape[0] > 1 else table[0]
    n_users = int(model_config["n_users"])
    config = dict(model_config, n_users=n_users + 1, trained_users=int(model_config.get("trained_users") or n_users))
    new = build_model(ModelConfig(**config))
    state = copy.deepcopy(model.state_dict())
    state["user_embedding.weight"] = torch.cat([table, mean[None]], dim=0)
    new.load_state_dict(state)
    return new.eval(), config


def fit_embedding_row(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    row: int,
    mean: torch.Tensor,
    spread: torch.Tensor,
    output_scale: float,
    cfg: PersonalizeConfig,
) -> tuple[torch.Tensor, int]:
    """Optimise embedding row `row` alone, as mean + spread * z from z = 0; returns (best row, steps run).

    Loss: mean((error / output_scale)²) + l2_toward_mean * mean(z²) on the given workouts, all at once."""
    torch.manual_seed(cfg.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cfg.threads))
    frozen = model.user_embedding.weight.detach()
    params = pretrained_params(model)
    for p in model.parameters():
        p.requires_grad_(False)
    z = torch.zeros_like(mean, requires_grad=True)
    opt = torch.optim.Adam([z], lr=cfg.lr)
    users = torch.full((len(x),), row, dtype=torch.long, device=x.device)
    best_loss, best_z, stale, step = float("inf"), z.detach().clone(), 0, 0
    try:
        with torch.backends.cudnn.flags(enabled=False):  # cuDNN's RNN backward refuses eval mode
            for step in range(1, cfg.steps + 1):
                table = torch.cat([frozen[:row], (mean + spread * z)[None], frozen[row + 1 :]])
                pred = torch.func.functional_call(model, {**params, "user_embedding.weight": table}, (x, users))
                loss = ((pred - y) / output_scale).pow(2).mean() + cfg.l2_toward_mean * z.pow(2).mean()
                value = float(loss.detach())
                stale = 0 if value < best_loss * (1 - cfg.min_rel_improvement) else stale + 1
                if value < best_loss:
                    best_loss, best_z = value, z.detach().clone()
                if stale >= cfg.patience:
                    break
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return (mean + spread * best_z).detach(), step


@dataclass
class WeightFit:
    """What `fit_weights` kept: the tuned weights and the embedding row at the kept step."""

    weights: dict[str, torch.Tensor]  # name -> tensor, only the tuned ones
    row: torch.Tensor  # the new embedding row
    steps: int  # the step kept: the best on the selection set, else the last
    steps_run: int  # steps taken (past the kept one while waiting for a better selection MAE)
    selection_mae: float | None  # at the kept step; None without a selection set
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, selection MAE), step 0 the start


def pretrained_params(model) -> dict[str, torch.Tensor]:
    """The model's weights by name, detached: what a fit starts from and is pulled toward."""
    return {name: p.detach() for name, p in model.named_parameters()}


def rung_weights(model, rung: str) -> list[str]:
    """The network weights a rung tunes besides the new embedding row (the embedding table itself never)."""
    names = [name for name, _ in model.named_parameters() if name != "user_embedding.weight"]
    if rung == "embedding":
        return []
    if rung == "head":
        last = model.cfg.num_layers - 1
        layer = {f"lstm.{kind}_l{last}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        return [name for name in names if name.startswith(HEAD_MODULES) or name in layer]
    if rung == "full":
        return names
    raise HRLSTMError(f"unknown personalisation rung {rung!r}; choose one of {', '.join(RUNG_CHOICES)}")


def weight_scales(params: dict[str, torch.Tensor], names) -> dict[str, torch.Tensor]:
    """Each weight's pull scale: the RMS of its layer's pre-trained weight matrix (a bias uses its matrix's)."""
    scales = {}
    for name in names:
        matrix = name.replace("bias", "weight")
        reference = params[matrix if matrix in params else name]
        scales[name] = reference.detach().pow(2).mean().sqrt().clamp_min(1e-3)
    return scales


@contextmanager
def _cpu_threads(n: int):
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def with_row(params: dict, row: int, vector: torch.Tensor) -> dict:
    """`params` with embedding row `row` replaced by `vector` (differentiably)."""
    table = params["user_embedding.weight"]
    return {**params, "user_embedding.weight": torch.cat([table[:row], vector[None], table[row + 1 :]])}


def params_pred(model, params: dict, x: torch.Tensor, row: int) -> torch.Tensor:
    """BPM predicted by `model` run with `params` as user `row`, dropout off."""
    users = torch.full((len(x),), row, dtype=torch.long, device=x.device)
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=False):
        return torch.func.functional_call(model.eval(), params, (x, users))


def params_mae(model, params: dict, x: torch.Tensor, y: torch.Tensor, row: int) -> float:
    """MAE in BPM of `model` run with `params` as user `row`, dropout off."""
    return float((params_pred(model, params, x, row) - y).abs().mean())


def fit_weights(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    row: int,
    mean: torch.Tensor,
    spread: torch.Tensor,
    start_row: torch.Tensor,
    output_scale: float,
    names: list[str],
    cfg: PersonalizeConfig,
    x_sel: torch.Tensor | None = None,
    y_sel: torch.Tensor | None = None,
    steps: int | None = None,
) -> WeightFit:
    """Tune embedding row `row` (as mean + spread * z, from `start_row`) and the weights `names` together.

    Loss, all given workouts at once: mean((error / output_scale)²) + l2_toward_mean * mean(z²) +
    l2_toward_weights * mean over the tuned elements of ((w - w0) / scale)², w0 the model's own values
    (see `weight_scales`). Adam: `lr` for z, `weight_lr` for the weights. Dropout off (eval mode).

    With a selection set (x_sel, y_sel) its MAE is measured before the first step and every `eval_every`
    steps; the best is kept, stopping `selection_patience` steps after it or at `steps` (default
    `weight_steps`). Without one, exactly `steps` (default `steps_without_selection`) and the last is kept.
    The model itself is not changed."""
    torch.manual_seed(cfg.seed)
    model.eval()
    base = pretrained_params(model)
    tuned = {name: base[name].clone().requires_grad_(True) for name in names}
    scales = weight_scales(base, names)
    n_tuned = max(1, sum(t.numel() for t in tuned.values()))
    z = ((start_row.to(mean) - mean) / spread).detach().clone().requires_grad_(True)
    groups = [{"params": [z], "lr": cfg.lr}]
    if tuned:
        groups.append({"params": list(tuned.values()), "lr": cfg.weight_lr})
    opt = torch.optim.Adam(groups)
    users = torch.full((len(x),), row, dtype=torch.long, device=x.device)
    selecting = x_sel is not None and y_sel is not None and len(x_sel) > 0
    if steps is None:
        steps = cfg.weight_steps if selecting else cfg.steps_without_selection

    def current() -> dict:
        return with_row({**base, **tuned}, row, mean + spread * z)

    def snapshot() -> tuple[dict, torch.Tensor]:
        return {name: t.detach().clone() for name, t in tuned.items()}, (mean + spread * z).detach().clone()

    best, best_step, best_mae, curve, step = snapshot(), 0, None, [], 0
    with _cpu_threads(cfg.threads), torch.backends.cudnn.flags(enabled=False):  # cuDNN's RNN backward: no eval mode
        if selecting:
            best_mae = params_mae(model, current(), x_sel, y_sel, row)
            curve.append((0, best_mae))
        for step in range(1, steps + 1):
            pred = torch.func.functional_call(model, current(), (x, users))
            loss = ((pred - y) / output_scale).pow(2).mean() + cfg.l2_toward_mean * z.pow(2).mean()
            if tuned:
                pull = sum(((tuned[n] - base[n]) / scales[n]).pow(2).sum() for n in names) / n_tuned
                loss = loss + cfg.l2_toward_weights * pull
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if selecting and (step % max(1, cfg.eval_every) == 0 or step == steps):
                mae = params_mae(model, current(), x_sel, y_sel, row)
                curve.append((step, mae))
                if mae < best_mae:
                    best, best_step, best_mae = snapshot(), step, mae
                elif step - best_step >= cfg.selection_patience:
                    break
    if not selecting:
        best, best_step = snapshot(), step
    return WeightFit(best[0], best[1], best_step, step, best_mae, curve)


def blend_fits(params: dict[str, torch.Tensor], fits: list[WeightFit]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weight-space average of `fits` (all started from `params`, the pre-trained weights): (row, weights).

    A weight one fit left alone counts at its pre-trained value: averaging head with full moves the body
    half as far as full did, and the head to the middle of the two."""
    names = sorted({name for fit in fits for name in fit.weights})
    weights = {name: sum(fit.weights.get(name, params[name]) for fit in fits) / len(fits) for name in names}
    return sum(fit.row for fit in fits) / len(fits), weights
