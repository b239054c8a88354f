"""Fit a new athlete from their own workouts: a ladder of rungs, chosen by their latest workouts.

    hr-lstm personalize --checkpoint checkpoints/lstm_embeddings_best.pt --workouts my/*.gpx --out me.pt --user me

The workouts are sorted by start time and the latest is held out for the before/after report. One
row is appended to the embedding table, started at the mean embedding (what an unknown user gets).
Four rungs, each adapting more of the network:

- `embedding`: only that row (Adam on the squared error plus an L2 pull toward the mean, measured
  in units of the trained athletes' spread, so a handful of workouts cannot drag it to an
  implausible place);
- `head`: the row, started where `embedding` left it, plus the output head and the last LSTM layer;
- `full`: the row plus every weight of the network;
- `blend`: the weight-space average of the `head` and `full` fits (a "model soup").

`head` and `full` pull their weights toward the pre-trained values (L2, relative to each layer's own
weight scale, in loss units). With `rung="auto"` and at least `min_ladder_workouts` workouts besides the
held-out one, the latest ~`selection_fraction` of those form a selection set: each rung is fitted on the
earlier ones (`head` and `full` stopping early, by steps, on the selection MAE) and scored there;
`blend` is kept unless the embedding alone scores lower (`ladder.choose_rung` says why not simply the
lowest), and it is refitted on all of them for the step counts it needed. With fewer workouts only
`embedding` is used. The held-out MAE is reported before (mean embedding) and after, and the result is
saved as an ordinary checkpoint that `hr-lstm predict` and `hr-lstm evaluate` load. It also carries what
`predict` needs besides weights: the warm-start calibration (fitted on the selection set as the rung
fitted without it predicted it, and on the held-out workout) and each workout's start, mean heart rate
and mean speed, so that a new file's previous-workout and days-since-first inputs are those it would
have among them all.
"""

from __future__ import annotations

import time
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
from ..models.intervals import fit_intervals_few_workouts
from ..models.lstm import predict_bpm
from ..models.warm_start import PERSONAL_PRIOR, WARM_START_MINUTES, fit_personal_warm_start
from ..training.trained import TrainedModel
from .finetune import RUNG_CHOICES, RUNG_WHAT, PersonalizeConfig, model_with_new_user
from .ladder import fit_rung, ladder_lines, pick_rung
from .workout_files import Workouts, read_workout_files

_PAYLOAD_HEADER = ("format", "hr_lstm_version", "torch_version", "state_dict", "training_state")

MIN_BAND_WORKOUTS = 4  # unseen workouts needed to calibrate the athlete's own band (else the generic one)


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
    left_out_by_cap: int = 0  # usable workouts older than the latest max_train_workouts: not fitted
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
    return Workouts(ws, [data.names[i] for i in idx], data.has_heart_rate[idx], skipped, data.n_files)


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
    data = Workouts(ws, [data.names[i] for i in order], data.has_heart_rate[order], data.skipped, data.n_files)
    deduplicated = drop_duplicates(data)
    for _, reason in deduplicated.skipped[len(data.skipped) :]:
        report(f"skipped  {reason}")
    return deduplicated


DUPLICATE_START_S = 60.0  # two workouts starting this close together are one activity recorded or exported twice


def drop_duplicates(data: Workouts) -> Workouts:
    """The workouts in time order with repeats left out (said in `skipped`): the same file's content twice, or
    two workouts starting within DUPLICATE_START_S of each other (one activity exported as FIT and GPX, or
    uploaded twice). The first of each group is kept. A repeat must not be both fitted on and held out."""
    start = data.workouts.meta["start_time"].to_numpy(float)
    ids = data.workouts.meta["id"].astype(str).to_numpy()
    keep, skipped, seen = [], list(data.skipped), {}
    for i in range(len(data)):
        same = seen.get(ids[i])
        if same is None and keep and start[i] - start[keep[-1]] < DUPLICATE_START_S:
            same = keep[-1]
        if same is not None:
            skipped.append((Path(data.names[i]), f"{data.names[i]}: the same workout as {data.names[same]} (a repeat)"))
            continue
        seen[ids[i]] = i
        keep.append(i)
    idx = np.asarray(keep, dtype=int)
    return Workouts(
        data.workouts.subset(idx), [data.names[i] for i in idx], data.has_heart_rate[idx], skipped, data.n_files
    )


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
    available = n if held_out is None else n - 1
    train_idx = np.arange(available)[-config.max_train_workouts :]
    capped = available - len(train_idx)
    if capped:
        report(
            f"note     fitting the latest {len(train_idx)} of {available} workouts: the {capped} earliest are left out "
            f"(the cap, --max-workouts {config.max_train_workouts}; docs/benchmarks.md measures it)"
        )
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
    choice = pick_rung(model, x_dev, y_dev, row, mean, spread, output_scale, config, progress=report)
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
        left_out_by_cap=capped,
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
    # selection fit's mean bias is not the refitted model's (docs/benchmarks.md, "Real athletes"). A handful of
    # workouts gives a noisy fit: it borrows from the base model's, fitted on its validation split.
    val_pred, val_rows = [], []
    if choice.selection_pred is not None:
        val_pred.append(choice.selection_pred), val_rows.extend(selection)
    if held_out is not None:
        val_pred.append(predict_bpm(model, x_all[[held_out]], as_new(1), next(model.parameters()).device))
        val_rows.append(held_out)
    val_pred = np.concatenate(val_pred) if val_pred else np.empty((0, y_all.shape[1]))
    val_true, val_time = y_all.numpy()[val_rows], data.workouts.channel("time_s")[val_rows]
    warm_start = {
        f"{k:g}": asdict(
            fit_personal_warm_start(val_pred, val_true, val_time, k, base.warm_start_prior(k), PERSONAL_PRIOR)
        )
        for k in WARM_START_MINUTES
        if k > 0
    }
    if len(val_rows) >= MIN_BAND_WORKOUTS:  # the band, on the same unseen predictions; else the generic one
        # By workout: a handful of workouts hold a handful of day levels. Around zero, as the warm start has no
        # intercept: the selection fit's mean bias is not the refitted model's (docs/intervals.md).
        band = fit_intervals_few_workouts(
            val_pred, val_true, val_time, fitted_on="personal selection, by workout, around zero", intercept=False
        )
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
