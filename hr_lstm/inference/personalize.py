"""Fit a new athlete's embedding from their own workouts, every other weight frozen.

    hr-lstm personalize --checkpoint checkpoints/lstm_embeddings_best.pt --workouts my/*.gpx --out me.pt --user me

The workouts are sorted by start time and the latest is held out. One row is
appended to the embedding table, started at the mean embedding (what an
unknown user gets), and only that row is optimised: Adam on the training
workouts' squared error plus an L2 pull toward the mean, measured in units of
the trained athletes' spread, so a handful of workouts cannot drag it to an
implausible place. The held-out MAE is reported before (mean embedding) and
after, and the result is saved as an ordinary checkpoint that `hr-lstm
predict` and `hr-lstm evaluate` load.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..console import say
from ..data.features import target
from ..data.filters import interpolate_implausible
from ..data.recordings import GENDERS
from ..errors import CheckpointError, DataError, HRLSTMError
from ..models.checkpoint import save_checkpoint
from ..models.lstm import ModelConfig, build_model, predict_bpm
from ..training.trained import TrainedModel
from .predict import Workouts, read_workout_files

_PAYLOAD_HEADER = ("format", "hr_lstm_version", "torch_version", "state_dict", "training_state")


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


def _mae(model, x, y, users) -> float:
    return float(np.abs(predict_bpm(model, x, users, next(model.parameters()).device) - y.numpy()).mean())


def athlete_workouts(base: TrainedModel, workouts, user: str, gender: str, report=say) -> Workouts:
    """The athlete's usable workouts (files, or `Workouts` already read) in time order, user_id set to `user`."""
    data = (
        workouts
        if isinstance(workouts, Workouts)
        else read_workout_files(workouts, base.config.parse, user, gender, require_heart_rate=True, report=report)
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
    data = athlete_workouts(base, workouts, user, gender, report)
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
    fitted, steps = fit_embedding_row(
        model, x_tr.to(base.device), y_tr.to(base.device), row, mean, spread, base.config.model.output_scale_bpm, config
    )
    fit_seconds = time.perf_counter() - fit_started
    with torch.no_grad():
        model.user_embedding.weight[row] = fitted
    train_after = _mae(model, x_tr, y_tr, as_new(len(train_idx)))
    distance = float(((fitted - mean) / spread).pow(2).mean().sqrt())
    report(
        f"fitted the embedding in {fit_seconds:.1f} s ({steps} steps, {distance:.2f} spreads from the mean): "
        f"training MAE {train_before:.1f} -> {train_after:.1f} BPM"
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
        user,
        Path(out),
        Path(checkpoint),
        [data.names[i] for i in train_idx],
        None if held_out is None else data.names[held_out],
        mae_before,
        mae_after,
        train_before,
        train_after,
        steps,
        round(fit_seconds, 3),
        0.0,
        distance,
        [(str(p), r) for p, r in data.skipped],
        data,
    )
    fields = {k: v for k, v in base.payload.items() if k not in _PAYLOAD_HEADER}
    fields["config"] = dict(base.payload["config"], model=model_config)
    fields["user_ids"] = [*base.user_ids, user]
    info = {k: v for k, v in result.as_dict().items() if k not in ("checkpoint", "total_seconds")}
    fields["metrics"] = dict(
        base.payload.get("metrics") or {},
        personalisation={**info, "gender": gender, "row": row, "config": asdict(config)},
    )
    try:
        save_checkpoint(Path(out), model.state_dict(), **fields)
    except OSError as exc:
        raise CheckpointError(f"{out}: cannot write the personalised checkpoint ({exc.strerror or exc})") from None
    result.total_seconds = round(time.perf_counter() - started, 3)
    report(f"Wrote {out} (user '{user}' is row {row} of the embedding) in {result.total_seconds:.1f} s")
    return result
