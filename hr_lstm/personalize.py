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

from .checkpoint import save_checkpoint
from .console import say
from .errors import CheckpointError, DataError, HRLSTMError
from .dataset import interpolate_implausible
from .evaluate import predict
from .features import build_inputs, target
from .models import ModelConfig, build_model
from .predict import Predictor, Workouts, read_workout_files
from .recordings import GENDERS

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
        reason = (f"{data.names[i]}: no heart rate in this recording" if not data.has_heart_rate[i] else
                  f"{data.names[i]}: heart rate outside {filters.hr_min_bpm:g}-{filters.hr_max_bpm:g} BPM at "
                  f"{bad[i].mean():.0%} of points (more than {filters.max_implausible_fraction:.0%})")
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


def fit_embedding_row(model, x: torch.Tensor, y: torch.Tensor, row: int, mean: torch.Tensor, spread: torch.Tensor,
                      output_scale: float, cfg: PersonalizeConfig) -> tuple[torch.Tensor, int]:
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
                table = torch.cat([frozen[:row], (mean + spread * z)[None], frozen[row + 1:]])
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
    return float(np.abs(predict(model, x, users, next(model.parameters()).device) - y.numpy()).mean())


def athlete_workouts(base: Predictor, workouts, user: str, gender: str, report=say) -> Workouts:
    """The athlete's usable workouts (files, or `Workouts` already read) in time order, user_id set to `user`."""
    data = workouts if isinstance(workouts, Workouts) else read_workout_files(
        workouts, base.config.parse, user, gender, require_heart_rate=True, report=report)
    data = usable_for_fitting(data, base.config.filters)
    for path, reason in data.skipped:
        report(f"skipped  {reason if path.name in reason else f'{path}: {reason}'}")
    if not len(data):
        raise DataError(f"no usable workouts with heart rate among the {len(data.skipped)} given (reasons above)")
    others = sorted(set(data.workouts.meta["user_id"].astype(str)) - {user})
    if len(others) > 1:
        raise DataError(f"the workouts belong to {len(others)} users ({', '.join(others[:3])}, ...); "
                        "personalise one athlete at a time")
    order = np.argsort(data.workouts.meta["start_time"].to_numpy(), kind="stable")
    ws = data.workouts.subset(order)
    ws.meta["user_id"] = user
    return Workouts(ws, [data.names[i] for i in order], data.has_heart_rate[order], data.skipped)


def personalize(checkpoint, workouts, out, user: str = "me", gender: str = "unknown",
                config: PersonalizeConfig = PersonalizeConfig(), device: str = "cpu", report=say) -> PersonalizationResult:
    """Fit `user`'s embedding on `workouts` (files, or `Workouts` already read) and save it into `out`."""
    started = time.perf_counter()
    base = Predictor.load(checkpoint, device)
    if not base.has_embedding:
        raise CheckpointError(f"{checkpoint}: personalize needs an lstm_embeddings checkpoint; this one is an "
                              f"'{base.config.model.model}' model, which has no user embedding to fit")
    if user in base.user_ids:
        raise HRLSTMError(f"--user {user}: already a user of {checkpoint}; choose a new name")
    if gender not in GENDERS:
        raise HRLSTMError(f"--gender {gender}: choose one of {', '.join(GENDERS)}")
    data = athlete_workouts(base, workouts, user, gender, report)
    n = len(data)
    held_out = n - 1 if n >= 2 else None  # the latest workout
    train_idx = np.arange(n if held_out is None else n - 1)[-config.max_train_workouts:]
    x_all = torch.from_numpy(build_inputs(data.workouts, base.config.features, base.normalizer))
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
    report(f"Personalising {Path(checkpoint).name} for '{user}' on {len(train_idx)} workout{plural}, " + (
        f"holding out the latest ({data.names[held_out]})" if held_out is not None
        else "the only one: no held-out workout, so no held-out MAE to report"))

    fit_started = time.perf_counter()
    fitted, steps = fit_embedding_row(model, x_tr.to(base.device), y_tr.to(base.device), row, mean, spread,
                                      base.config.model.output_scale_bpm, config)
    fit_seconds = time.perf_counter() - fit_started
    with torch.no_grad():
        model.user_embedding.weight[row] = fitted
    train_after = _mae(model, x_tr, y_tr, as_new(len(train_idx)))
    distance = float(((fitted - mean) / spread).pow(2).mean().sqrt())
    report(f"fitted the embedding in {fit_seconds:.1f} s ({steps} steps, {distance:.2f} spreads from the mean): "
           f"training MAE {train_before:.1f} -> {train_after:.1f} BPM")
    mae_before = mae_after = None
    if held_out is not None:
        x_ho, y_ho = x_all[[held_out]], y_all[[held_out]]
        mae_before, mae_after = _mae(base_model, x_ho, y_ho, as_unknown(1)), _mae(model, x_ho, y_ho, as_new(1))
        report(f"held-out {data.names[held_out]}: MAE {mae_before:.1f} BPM before (mean embedding) -> "
               f"{mae_after:.1f} BPM after")

    result = PersonalizationResult(
        user, Path(out), Path(checkpoint), [data.names[i] for i in train_idx],
        None if held_out is None else data.names[held_out], mae_before, mae_after, train_before, train_after,
        steps, round(fit_seconds, 3), 0.0, distance, [(str(p), r) for p, r in data.skipped], data)
    fields = {k: v for k, v in base.payload.items() if k not in _PAYLOAD_HEADER}
    fields["config"] = dict(base.payload["config"], model=model_config)
    fields["user_ids"] = [*base.user_ids, user]
    info = {k: v for k, v in result.as_dict().items() if k not in ("checkpoint", "total_seconds")}
    fields["metrics"] = dict(base.payload.get("metrics") or {},
                             personalisation={**info, "gender": gender, "row": row, "config": asdict(config)})
    try:
        save_checkpoint(Path(out), model.state_dict(), **fields)
    except OSError as exc:
        raise CheckpointError(f"{out}: cannot write the personalised checkpoint ({exc.strerror or exc})") from None
    result.total_seconds = round(time.perf_counter() - started, 3)
    report(f"Wrote {out} (user '{user}' is row {row} of the embedding) in {result.total_seconds:.1f} s")
    return result


# ---- a new athlete and a checkpoint for the notebook, when none are given -----------------------

def simulated_new_athlete(out_dir, seed: int = 2024, candidates: int = 8) -> Path:
    """Simulate `candidates` athletes and keep the one with the highest resting heart rate (far from the mean)."""
    from .fitrec import iter_records
    from .recordings import write_records
    from .simulate import SimConfig, load_truth, sidecar_paths, simulate

    out = Path(out_dir) / f"new_athlete_seed{seed}.json.gz"
    if out.exists():
        return out
    tmp = Path(out_dir) / f".candidates_seed{seed}.json.gz"
    simulate(SimConfig(n_users=candidates, seed=seed, min_workouts=6, max_workouts=8), tmp)
    try:
        athletes = load_truth(tmp).athletes
        chosen = int(athletes.loc[athletes["hr_rest"].idxmax(), "userId"])
        write_records([r for _, _, r in iter_records(tmp) if int(r["userId"]) == chosen], out)
    finally:
        for path in (tmp, *sidecar_paths(tmp)):
            path.unlink(missing_ok=True)
    return out


def resolve_workout_files(workout_files, output_dir) -> list[Path]:
    """The given files (globs expanded); when nothing matches, a simulated new athlete written into output_dir."""
    import glob

    patterns = [workout_files] if isinstance(workout_files, (str, Path)) else list(workout_files or [])
    found = [Path(p) for pattern in map(str, patterns)
             for p in (sorted(glob.glob(str(Path(pattern).expanduser()))) if glob.has_magic(pattern) else [pattern])]
    if any(path.exists() for path in found):
        return found  # a missing one among them is skipped later, with its reason
    if patterns:
        say(f"No file matches {', '.join(map(str, patterns))}: using a simulated new athlete instead")
    return [simulated_new_athlete(Path(output_dir))]


def resolve_checkpoint(checkpoint, output_dir) -> Path:
    """`checkpoint`; else the embedding model notebook 03 recorded in `output_dir`, else the usual places."""
    import json

    from .analysis import output_folder
    from .paths import CHECKPOINT_DIR

    if checkpoint:
        return Path(checkpoint).expanduser()
    folder = output_folder(output_dir)
    recorded = folder / "03_embedding_lstm.metrics.json"
    options = [Path(json.loads(recorded.read_text())["checkpoint"])] if recorded.is_file() else []
    options += [folder / "checkpoints" / "lstm_embeddings_best.pt", folder / "lstm_embeddings_best.pt",
                CHECKPOINT_DIR / "lstm_embeddings_best.pt"]
    for path in options:
        if path.is_file():
            return path
    raise CheckpointError(f"{options[0]}: no such checkpoint; run notebook 03 (or hr-lstm train --model "
                          "lstm_embeddings) first, or pass `checkpoint`")


def mae_table(result: PersonalizationResult, before: list, after: list) -> "pd.DataFrame":
    """Per-workout MAE with the mean and the fitted embedding, long: workout, start, role, embedding, mae_bpm."""
    import pandas as pd

    role = {name: "training" for name in result.train_workouts} | ({result.held_out: "held out"}
                                                                     if result.held_out else {})
    meta = result.workouts.workouts.meta
    start = dict(zip(result.workouts.names, pd.to_datetime(meta["start_time"], unit="s").dt.strftime("%Y-%m-%d %H:%M")))
    rows = [{"workout": p.name, "start": start.get(p.name), "role": role.get(p.name, "not used"), "embedding": label,
             "mae_bpm": p.mae} for label, preds in (("mean embedding", before), ("personalised", after))
            for p in preds if p.mae is not None]
    return pd.DataFrame(rows, columns=["workout", "start", "role", "embedding", "mae_bpm"])


# ---- command line ---------------------------------------------------------------------------------

def add_personalize_arguments(parser) -> None:
    """Arguments of `hr-lstm personalize --checkpoint PATH --workouts FILE... --out PATH [--user NAME]`."""
    d = PersonalizeConfig()
    parser.add_argument("--checkpoint", required=True, metavar="PATH", help="an lstm_embeddings checkpoint")
    parser.add_argument("--workouts", required=True, nargs="+", metavar="FILE",
                        help="the athlete's FIT/GPX/TCX recordings or FitRec file; the latest is held out")
    parser.add_argument("--out", required=True, metavar="PATH", help="personalised checkpoint to write (.pt)")
    parser.add_argument("--user", default="me", metavar="NAME", help="the new athlete's id (default: me)")
    parser.add_argument("--gender", choices=GENDERS, default="unknown", help="for recordings (default unknown)")
    parser.add_argument("--steps", type=int, default=d.steps, help=f"most optimiser steps (default {d.steps})")
    parser.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr})")
    parser.add_argument("--l2", type=float, default=d.l2_toward_mean,
                        help=f"pull toward the mean embedding (default {d.l2_toward_mean})")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")


def run_personalize(args) -> int:
    """Personalise and print before/after; 0 on success (errors raise HRLSTMError: exit 2)."""
    if args.steps < 1 or args.lr <= 0 or args.l2 < 0:
        raise HRLSTMError("--steps must be at least 1, --lr positive and --l2 not negative")
    config = PersonalizeConfig(steps=args.steps, lr=args.lr, l2_toward_mean=args.l2)
    result = personalize(args.checkpoint, args.workouts, args.out, args.user, args.gender, config, args.device)
    n_used = len(result.train_workouts) + (result.held_out is not None)
    held_out = (f"held-out MAE {result.mae_before:.1f} -> {result.mae_after:.1f} BPM" if result.held_out is not None
                else "no held-out workout")
    print(f"Personalised '{result.user}' from {n_used} workouts ({len(result.skipped)} skipped): {held_out}; "
          f"fit {result.fit_seconds:.1f} s, {result.total_seconds:.1f} s in all", flush=True)
    return 0
