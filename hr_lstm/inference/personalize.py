"""Fit a new athlete from their own workouts: a ladder of rungs, chosen by their latest workouts.

    hr-lstm personalize --checkpoint checkpoints/lstm_embeddings_best.pt --workouts my/*.gpx --out me.pt --user me

The workouts are sorted by start time and the latest is held out for the before/after report. One
row is appended to the embedding table, started at the mean embedding (what an unknown user gets).
Three rungs, each adapting more of the network:

- `embedding`: only that row (Adam on the squared error plus an L2 pull toward the mean, measured
  in units of the trained athletes' spread, so a handful of workouts cannot drag it to an
  implausible place);
- `head`: the row, started where `embedding` left it, plus the output head and the last LSTM layer;
- `full`: the row plus every weight of the network.

`head` and `full` pull their weights toward the pre-trained values (L2, relative to each layer's
own weight scale, in loss units). With `rung="auto"` and at least `min_ladder_workouts` workouts
besides the held-out one, the latest ~`selection_fraction` of those form a selection set: each rung
is fitted on the earlier ones (`head` and `full` stopping early, by steps, on the selection MAE), the
rung with the lowest selection MAE wins (within `tie_tolerance`, the simpler one), and it is refitted
on all of them for the step count it needed. With fewer workouts only `embedding` is used. The
held-out MAE is reported before (mean embedding) and after, and the result is saved as an ordinary
checkpoint that `hr-lstm predict` and `hr-lstm evaluate` load. It also carries what `predict` needs
besides weights: the warm-start calibration (fitted on the selection set as the rung fitted without it
predicted it, and on the held-out workout) and each workout's start, mean heart rate and mean speed, so
that a new file's previous-workout and days-since-first inputs are those it would have among them all.
"""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..console import say
from ..data.features import target, workout_summaries
from ..data.filters import interpolate_implausible, repair_out_of_range
from ..data.recordings import GENDERS
from ..errors import CheckpointError, DataError, HRLSTMError
from ..models.checkpoint import save_checkpoint
from ..models.intervals import fit_intervals_few_workouts, widest
from ..models.lstm import ModelConfig, build_model, predict_bpm
from ..models.warm_start import WARM_START_MINUTES, fit_warm_start
from ..training.trained import TrainedModel
from .predict import Workouts, read_workout_files

_PAYLOAD_HEADER = ("format", "hr_lstm_version", "torch_version", "state_dict", "training_state")


RUNGS = ("embedding", "head", "full")  # simplest first: ties go to the earlier one
RUNG_CHOICES = ("auto", *RUNGS)
MIN_BAND_WORKOUTS = 4  # unseen workouts needed to calibrate the athlete's own band (else the generic one)
# The output heads the `head` rung tunes: the heart rate's (the demand's, for lstm_kinetic) and the
# time constants' of lstm_kinetic.
HEAD_MODULES = ("head.", "kinetic_head.")
RUNG_WHAT = {
    "embedding": "the embedding",
    "head": "the embedding, the output head and the last LSTM layer",
    "full": "the embedding and every weight",
}


@dataclass
class PersonalizeConfig:
    steps: int = 200  # most Adam steps on the new embedding row
    lr: float = 0.1  # in units of the trained athletes' embedding spread
    l2_toward_mean: float = 0.05  # weight of mean(((row - mean) / spread)²) next to the squared error / output scale²
    patience: int = 30  # stop after this many steps without a `min_rel_improvement` lower training loss
    min_rel_improvement: float = 1e-3
    max_train_workouts: int = 64  # the latest ones; bounds the time per step
    threads: int = 1  # CPU threads while fitting: a small LSTM's step is fastest (and 20x less contended) on one
    seed: int = 0
    # The ladder. "auto" picks among RUNGS by the selection set; a rung's name forces it.
    rung: str = "auto"
    selection_fraction: float = 0.2  # the latest ~20% of the workouts before the held-out one (at least 1)
    min_ladder_workouts: int = 4  # fewer workouts before the held-out one: no selection set, `embedding` alone
    tie_tolerance: float = 0.01  # selection MAEs within 1% of the best: the simplest such rung wins
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


@dataclass
class PersonalizationResult:
    user: str
    checkpoint: Path  # the personalised checkpoint written
    base_checkpoint: Path
    train_workouts: list[str]
    held_out: str | None  # the latest workout; None with a single workout
    mae_before: float | None  # held-out MAE with the mean embedding (what an unknown user gets)
    mae_after: float | None  # held-out MAE with the fitted embedding
    train_mae_before: float
    train_mae_after: float
    steps_run: int
    fit_seconds: float  # the optimisation alone
    total_seconds: float  # reading files, fitting, evaluating, saving
    distance_from_mean: float  # RMS distance of the new row from the mean embedding, in spreads
    rung: str = "embedding"  # the rung saved
    rung_reason: str = ""  # why that rung, in words
    # One row per rung tried: rung, selection_mae (None without a selection set), steps (the rung's own:
    # for head / full, after the embedding warm start), chosen.
    ladder: list[dict] = field(default_factory=list)
    selection_workouts: list[str] = field(default_factory=list)  # the latest of train_workouts; empty without
    selection_mae_before: float | None = None  # the selection set's MAE with the mean embedding, for reference
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    workouts: Workouts | None = field(default=None, repr=False)  # what was read, user_id set to `user`

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("workouts")
        return {k: str(v) if isinstance(v, Path) else v for k, v in out.items()}


def usable_for_fitting(data: Workouts, filters) -> Workouts:
    """Workouts with measured, mostly plausible heart rate (the training filter); a few bad points interpolated."""
    hr = data.workouts.channel("heart_rate_bpm")
    bad = (hr < filters.hr_min_bpm) | (hr > filters.hr_max_bpm)
    keep = (bad.mean(axis=1) <= filters.max_implausible_fraction) & data.has_heart_rate
    skipped = list(data.skipped)
    for i in np.flatnonzero(~keep):
        reason = (
            f"{data.names[i]}: no heart rate in this recording"
            if not data.has_heart_rate[i]
            else f"{data.names[i]}: heart rate outside {filters.hr_min_bpm:g}-{filters.hr_max_bpm:g} BPM at "
            f"{bad[i].mean():.0%} of points (more than {filters.max_implausible_fraction:.0%})"
        )
        skipped.append((Path(data.names[i]), reason))
    idx = np.flatnonzero(keep)
    ws = data.workouts.subset(idx)
    ws.series = np.array(ws.series)
    interpolate_implausible(ws.channel("heart_rate_bpm"), filters)  # as the training filter does
    repair_out_of_range(ws, filters)
    return Workouts(ws, [data.names[i] for i in idx], data.has_heart_rate[idx], skipped)


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
    params = {name: p.detach() for name, p in model.named_parameters()}
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


def _with_row(params: dict, row: int, vector: torch.Tensor) -> dict:
    """`params` with embedding row `row` replaced by `vector` (differentiably)."""
    table = params["user_embedding.weight"]
    return {**params, "user_embedding.weight": torch.cat([table[:row], vector[None], table[row + 1 :]])}


def _params_pred(model, params: dict, x: torch.Tensor, row: int) -> torch.Tensor:
    """BPM predicted by `model` run with `params` as user `row`, dropout off."""
    users = torch.full((len(x),), row, dtype=torch.long, device=x.device)
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=False):
        return torch.func.functional_call(model.eval(), params, (x, users))


def _params_mae(model, params: dict, x: torch.Tensor, y: torch.Tensor, row: int) -> float:
    """MAE in BPM of `model` run with `params` as user `row`, dropout off."""
    return float((_params_pred(model, params, x, row) - y).abs().mean())


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
    base = {name: p.detach() for name, p in model.named_parameters()}
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
        return _with_row({**base, **tuned}, row, mean + spread * z)

    def snapshot() -> tuple[dict, torch.Tensor]:
        return {name: t.detach().clone() for name, t in tuned.items()}, (mean + spread * z).detach().clone()

    best, best_step, best_mae, curve, step = snapshot(), 0, None, [], 0
    with _cpu_threads(cfg.threads), torch.backends.cudnn.flags(enabled=False):  # cuDNN's RNN backward: no eval mode
        if selecting:
            best_mae = _params_mae(model, current(), x_sel, y_sel, row)
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
                mae = _params_mae(model, current(), x_sel, y_sel, row)
                curve.append((step, mae))
                if mae < best_mae:
                    best, best_step, best_mae = snapshot(), step, mae
                elif step - best_step >= cfg.selection_patience:
                    break
    if not selecting:
        best, best_step = snapshot(), step
    return WeightFit(best[0], best[1], best_step, step, best_mae, curve)


def selection_split(n: int, cfg: PersonalizeConfig) -> tuple[np.ndarray, np.ndarray]:
    """Positions (fit, selection) among `n` time-ordered workouts: the latest ~selection_fraction (at least 1)
    select; with fewer than `min_ladder_workouts` there is no selection set (all fit)."""
    if n < max(2, cfg.min_ladder_workouts):
        return np.arange(n), np.arange(0)
    k = min(n - 1, max(1, int(round(cfg.selection_fraction * n))))
    return np.arange(n - k), np.arange(n - k, n)


def choose_rung(selection_maes: dict[str, float], tolerance: float = 0.01) -> str:
    """The simplest rung (RUNGS order) whose selection MAE is within `tolerance` (relative) of the lowest."""
    best = min(selection_maes.values())
    return next(r for r in RUNGS if r in selection_maes and selection_maes[r] <= best * (1 + tolerance))


def run_ladder(
    model, x_fit, y_fit, x_sel, y_sel, row, mean, spread, output_scale, rungs, cfg: PersonalizeConfig
) -> list[dict]:
    """Each rung fitted on (x_fit, y_fit) and scored on the selection set (x_sel, y_sel), the model unchanged.

    The embedding rung is fitted once and is where head / full start. One row per rung: rung, selection_mae
    (BPM), steps (the rung's own: for head / full, the weight steps kept after that start), seconds, and
    selection_pred (the selection set as that fit predicts it, BPM: workouts it never saw, which is what
    the warm start is calibrated on; `pick_rung` takes it out of the row)."""
    started = time.perf_counter()
    fitted, emb_steps = fit_embedding_row(model, x_fit, y_fit, row, mean, spread, output_scale, cfg)
    base = {name: p.detach() for name, p in model.named_parameters()}
    pred = _params_pred(model, _with_row(base, row, fitted), x_sel, row)
    ladder = [
        {
            "rung": "embedding",
            "selection_mae": float((pred - y_sel).abs().mean()),
            "steps": emb_steps,
            "seconds": round(time.perf_counter() - started, 3),
            "selection_pred": pred.cpu().numpy(),
        }
    ]
    for rung in (r for r in RUNGS if r in rungs and r != "embedding"):
        started = time.perf_counter()
        names = rung_weights(model, rung)
        fit = fit_weights(model, x_fit, y_fit, row, mean, spread, fitted, output_scale, names, cfg, x_sel, y_sel)
        pred = _params_pred(model, _with_row({**base, **fit.weights}, row, fit.row), x_sel, row)
        ladder.append(
            {
                "rung": rung,
                "selection_mae": fit.selection_mae,
                "steps": fit.steps,
                "seconds": round(time.perf_counter() - started, 3),
                "selection_pred": pred.cpu().numpy(),
            }
        )
    return ladder


def fit_rung(
    rung, model, x, y, row, mean, spread, output_scale, cfg: PersonalizeConfig, steps: int | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
    """`rung` fitted on (x, y) without a selection set: (row, tuned weights, steps in all), the model unchanged.

    The embedding row as `fit_embedding_row` finds it; for head / full then `steps` weight steps from there."""
    fitted, emb_steps = fit_embedding_row(model, x, y, row, mean, spread, output_scale, cfg)
    if rung == "embedding":
        return fitted, {}, emb_steps
    fit = fit_weights(model, x, y, row, mean, spread, fitted, output_scale, rung_weights(model, rung), cfg, steps=steps)
    return fit.row, fit.weights, emb_steps + fit.steps


@dataclass
class RungChoice:
    """Which rung to fit on all the workouts, and why."""

    rung: str
    reason: str
    ladder: list[dict]  # as `run_ladder` returns it, with `chosen`; empty without a selection set
    selection: np.ndarray  # positions of the selection workouts among those given; empty without
    steps: int | None  # weight steps for head / full on all the workouts (None: `steps_without_selection`)
    selection_mae_before: float | None = None  # the selection set with the mean embedding
    window: str = ""  # the selection set in words
    selection_pred: np.ndarray | None = None  # (len(selection), steps) BPM: the chosen rung fitted without them


def pick_rung(model, x, y, row, mean, spread, output_scale, cfg: PersonalizeConfig) -> RungChoice:
    """The rung for (x, y), time-ordered workouts before the held-out one: `cfg.rung`, or for "auto" the
    simplest with the lowest selection MAE (`choose_rung`) when there are enough for a selection set, else
    `embedding`. A forced rung is still fitted without the selection set and scored on it when there is one:
    head / full take their step count from it, and its predictions of it calibrate the warm start."""
    n, plural = len(x), "" if len(x) == 1 else "s"
    fit_pos, sel_pos = selection_split(n, cfg)
    if not len(sel_pos):
        if cfg.rung == "embedding":
            return RungChoice("embedding", "asked for (rung=embedding)", [], sel_pos, None)
        if cfg.rung == "auto":
            reason = (
                f"only {n} workout{plural} before the held-out one (fewer than {cfg.min_ladder_workouts}): "
                "no selection set, so the embedding rung alone"
            )
            return RungChoice("embedding", reason, [], sel_pos, None)
        reason = (
            f"asked for (rung={cfg.rung}); only {n} workout{plural} before the held-out one, no selection set: "
            f"{cfg.steps_without_selection} weight steps after the embedding"
        )
        return RungChoice(cfg.rung, reason, [], sel_pos, None)
    tried = RUNGS if cfg.rung == "auto" else ("embedding", cfg.rung)
    x_fit, y_fit, x_sel, y_sel = x[fit_pos], y[fit_pos], x[sel_pos], y[sel_pos]
    ladder = run_ladder(model, x_fit, y_fit, x_sel, y_sel, row, mean, spread, output_scale, tried, cfg)
    before = _params_mae(model, {name: p.detach() for name, p in model.named_parameters()}, x_sel, y_sel, row)
    maes = {r["rung"]: r["selection_mae"] for r in ladder}
    best = min(maes, key=maes.get)
    window = f"the latest {len(sel_pos)} of the {n} workouts, fitted on the earlier {len(fit_pos)}"
    if cfg.rung != "auto":
        rung, reason = cfg.rung, f"asked for (rung={cfg.rung}); selection MAE {maes[cfg.rung]:.1f} BPM"
    else:
        rung = choose_rung(maes, cfg.tie_tolerance)
        reason = f"the lowest selection MAE ({maes[rung]:.1f} BPM)"
        if rung != best:
            reason = (
                f"selection MAE {maes[rung]:.1f} BPM, within {cfg.tie_tolerance:.0%} of '{best}' "
                f"({maes[best]:.1f} BPM): the simpler rung wins"
            )
    predicted = {r["rung"]: r.pop("selection_pred", None) for r in ladder}  # arrays stay out of the checkpoint
    for r in ladder:
        r["chosen"] = r["rung"] == rung
    steps = next(r["steps"] for r in ladder if r["rung"] == rung)
    return RungChoice(rung, reason, ladder, sel_pos, steps, before, window, predicted.get(rung))


def ladder_lines(ladder: list[dict], selection_before: float | None = None) -> list[str]:
    """The ladder as a small table: rung, selection MAE, steps; the chosen one marked."""
    lines = [f"  {'rung':<10} {'selection MAE':>13} {'steps':>6}"]
    if selection_before is not None:
        lines.append(f"  {'(none)':<10} {selection_before:>9.1f} BPM {0:>6}  the mean embedding, for reference")
    for r in ladder:
        mae = "" if r["selection_mae"] is None else f"{r['selection_mae']:.1f} BPM"
        lines.append(f"  {r['rung']:<10} {mae:>13} {r['steps']:>6}" + ("  <- chosen" if r.get("chosen") else ""))
    return lines


def _mae(model, x, y, users) -> float:
    return float(np.abs(predict_bpm(model, x, users, next(model.parameters()).device) - y.numpy()).mean())


def athlete_workouts(
    base: TrainedModel, workouts, user: str, gender: str, report=say, sport: str | None = None
) -> Workouts:
    """The athlete's usable workouts (files, or `Workouts` already read) in time order, user_id set to `user`."""
    data = (
        workouts
        if isinstance(workouts, Workouts)
        else read_workout_files(
            workouts, base.config.parse, user, gender, require_heart_rate=True, report=report, sport=sport
        )
    )
    data = usable_for_fitting(data, base.config.filters)
    for path, reason in data.skipped:
        report(f"skipped  {reason if path.name in reason else f'{path}: {reason}'}")
    if not len(data):
        raise DataError(f"no usable workouts with heart rate among the {len(data.skipped)} given (reasons above)")
    others = sorted(set(data.workouts.meta["user_id"].astype(str)) - {user})
    if len(others) > 1:
        raise DataError(
            f"the workouts belong to {len(others)} users ({', '.join(others[:3])}, ...); "
            "personalise one athlete at a time"
        )
    order = np.argsort(data.workouts.meta["start_time"].to_numpy(), kind="stable")
    ws = data.workouts.subset(order)
    ws.meta["user_id"] = user
    return Workouts(ws, [data.names[i] for i in order], data.has_heart_rate[order], data.skipped)


def personalize(
    checkpoint,
    workouts,
    out,
    user: str = "me",
    gender: str = "unknown",
    config: PersonalizeConfig = PersonalizeConfig(),
    device: str = "cpu",
    report=say,
    sport: str | None = None,
) -> PersonalizationResult:
    """Fit `user`'s embedding on `workouts` (files, or `Workouts` already read) and save it into `out`."""
    started = time.perf_counter()
    base = TrainedModel.load(checkpoint, device)
    if not base.has_embedding:
        raise CheckpointError(
            f"{checkpoint}: personalize needs an lstm_embeddings checkpoint; this one is an "
            f"'{base.config.model.model}' model, which has no user embedding to fit"
        )
    if user in base.user_ids:
        raise HRLSTMError(f"--user {user}: already a user of {checkpoint}; choose a new name")
    if gender not in GENDERS:
        raise HRLSTMError(f"--gender {gender}: choose one of {', '.join(GENDERS)}")
    if config.rung not in RUNG_CHOICES:
        raise HRLSTMError(f"--rung {config.rung}: choose one of {', '.join(RUNG_CHOICES)}")
    data = athlete_workouts(base, workouts, user, gender, report, sport)
    n = len(data)
    held_out = n - 1 if n >= 2 else None  # the latest workout
    train_idx = np.arange(n if held_out is None else n - 1)[-config.max_train_workouts :]
    x_all = base.inputs(data.workouts)
    y_all = torch.from_numpy(np.ascontiguousarray(target(data.workouts)))
    x_tr, y_tr = x_all[train_idx], y_all[train_idx]

    model, model_config = model_with_new_user(base.model.cpu(), base.payload["config"]["model"])
    model, base_model = model.to(base.device), base.model.to(base.device)
    row = model_config["n_users"]  # the new user's index (row 0 is the unknown user)
    known = base_model.user_embedding.weight.detach()[1:]  # the trained athletes' rows
    mean = model.user_embedding.weight.detach()[row].clone()
    spread = known.std(dim=0).clamp_min(1e-3) if len(known) > 1 else torch.full_like(mean, 0.1)
    as_unknown = lambda k: torch.zeros(k, dtype=torch.long)  # noqa: E731
    as_new = lambda k: torch.full((k,), row, dtype=torch.long)  # noqa: E731
    train_before = _mae(base_model, x_tr, y_tr, as_unknown(len(train_idx)))
    plural = "" if len(train_idx) == 1 else "s"
    report(
        f"Personalising {Path(checkpoint).name} for '{user}' on {len(train_idx)} workout{plural}, "
        + (
            f"holding out the latest ({data.names[held_out]})"
            if held_out is not None
            else "the only one: no held-out workout, so no held-out MAE to report"
        )
    )

    fit_started = time.perf_counter()
    output_scale = base.config.model.output_scale_bpm
    x_dev, y_dev = x_tr.to(base.device), y_tr.to(base.device)
    choice = pick_rung(model, x_dev, y_dev, row, mean, spread, output_scale, config)
    rung, ladder, selection = choice.rung, choice.ladder, train_idx[choice.selection]
    if ladder:
        report(f"Ladder, selecting on {choice.window}:")
        for line in ladder_lines(ladder, choice.selection_mae_before):
            report(line)
    report(f"rung '{rung}': {choice.reason}")
    fitted, weights, steps = fit_rung(rung, model, x_dev, y_dev, row, mean, spread, output_scale, config, choice.steps)
    fit_seconds = time.perf_counter() - fit_started
    with torch.no_grad():
        model.user_embedding.weight[row] = fitted
        params = dict(model.named_parameters())
        for name, value in weights.items():
            params[name].copy_(value)
    train_after = _mae(model, x_tr, y_tr, as_new(len(train_idx)))
    distance = float(((fitted - mean) / spread).pow(2).mean().sqrt())
    refit = " (refitted on all of them)" if ladder else ""
    report(
        f"fitted {RUNG_WHAT[rung]}{refit} in {fit_seconds:.1f} s ({steps} steps, {distance:.2f} spreads from the "
        f"mean): training MAE {train_before:.1f} -> {train_after:.1f} BPM"
    )
    mae_before = mae_after = None
    if held_out is not None:
        x_ho, y_ho = x_all[[held_out]], y_all[[held_out]]
        mae_before, mae_after = _mae(base_model, x_ho, y_ho, as_unknown(1)), _mae(model, x_ho, y_ho, as_new(1))
        report(
            f"held-out {data.names[held_out]}: MAE {mae_before:.1f} BPM before (mean embedding) -> "
            f"{mae_after:.1f} BPM after"
        )

    result = PersonalizationResult(
        user=user,
        checkpoint=Path(out),
        base_checkpoint=Path(checkpoint),
        train_workouts=[data.names[i] for i in train_idx],
        held_out=None if held_out is None else data.names[held_out],
        mae_before=mae_before,
        mae_after=mae_after,
        train_mae_before=train_before,
        train_mae_after=train_after,
        steps_run=steps,
        fit_seconds=round(fit_seconds, 3),
        total_seconds=0.0,
        distance_from_mean=distance,
        rung=rung,
        rung_reason=choice.reason,
        ladder=ladder,
        selection_workouts=[data.names[i] for i in selection],
        selection_mae_before=choice.selection_mae_before,
        skipped=[(str(p), r) for p, r in data.skipped],
        workouts=data,
    )
    fields = {k: v for k, v in base.payload.items() if k not in _PAYLOAD_HEADER}
    fields["config"] = dict(base.payload["config"], model=model_config)
    fields["user_ids"] = [*base.user_ids, user]
    info = {k: v for k, v in result.as_dict().items() if k not in ("checkpoint", "total_seconds")}
    # How much of today's measured gap carries over, for `predict --warm-start-min`: calibrated on workouts
    # predicted without having been fitted (the selection set as the rung fitted without it saw it, and the
    # held-out workout). Its own training workouts would not do: a model that has fitted a workout leaves a
    # smaller, less lasting gap there than on a new one, so the carry-over is underrated. No intercept: the
    # selection fit's mean bias is not the refitted model's (docs/benchmarks.md, "Real athletes").
    val_pred, val_rows = [], []
    if choice.selection_pred is not None:
        val_pred.append(choice.selection_pred), val_rows.extend(selection)
    if held_out is not None:
        val_pred.append(predict_bpm(model, x_all[[held_out]], as_new(1), next(model.parameters()).device))
        val_rows.append(held_out)
    val_pred = np.concatenate(val_pred) if val_pred else np.empty((0, y_all.shape[1]))
    val_true, val_time = y_all.numpy()[val_rows], data.workouts.channel("time_s")[val_rows]
    warm_start = {
        f"{k:g}": asdict(fit_warm_start(val_pred, val_true, val_time, k, intercept=False))
        for k in WARM_START_MINUTES
        if k > 0
    }
    if len(val_rows) >= MIN_BAND_WORKOUTS:  # the band, on the same unseen predictions; else the generic one
        # By workout: a handful of workouts hold a handful of day levels (docs/intervals.md).
        own = fit_intervals_few_workouts(val_pred, val_true, val_time, fitted_on="personal selection, by workout")
        generic = base.interval  # never narrower than the generic band (intervals.widest says why)
        band = own if generic is None else widest(own, generic, "personal selection by workout, at least generic")
        fields["interval"] = band.as_dict()
    fields["metrics"] = dict(
        base.payload.get("metrics") or {},
        personalisation={
            **info,
            "gender": gender,
            "row": row,
            "config": asdict(config),
            "warm_start": warm_start,
            # What a new workout's history-dependent inputs need (`predict.workouts_in_context`): every workout
            # read here, so that one file predicted later sees the athlete's previous workout and first start.
            "history": workout_summaries(data.workouts).drop(columns="user_id").to_dict(orient="list"),
        },
    )
    save_checkpoint(Path(out), model.state_dict(), **fields)  # a write failure is one line naming `out` (paths)
    result.total_seconds = round(time.perf_counter() - started, 3)
    report(f"Wrote {out} (user '{user}' is row {row} of the embedding) in {result.total_seconds:.1f} s")
    return result
