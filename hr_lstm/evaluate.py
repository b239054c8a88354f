"""Metrics for heart-rate curves, and predictions from a trained model.

Pooled metrics treat every time step of every workout alike (what the seed
reported); the per-workout MAE distribution says how a typical workout fares.
On simulated data the recorded heart rate carries sensor noise and strap
artefacts that no model can predict; the MAE between recorded and noise-free
heart rate is the floor a perfect model would reach.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .models import HRLSTM


@dataclass
class Metrics:
    mae: float
    rmse: float
    r2: float
    median_workout_mae: float
    n_workouts: int

    def line(self) -> str:
        return (
            f"MAE {self.mae:.2f} BPM | RMSE {self.rmse:.2f} | R² {self.r2:.3f} | "
            f"median workout MAE {self.median_workout_mae:.2f} | {self.n_workouts:,} workouts"
        )

    def as_dict(self, prefix: str = "") -> dict:
        return {f"{prefix}{k}": v for k, v in asdict(self).items()}


def per_workout_mae(pred_bpm: np.ndarray, true_bpm: np.ndarray) -> np.ndarray:
    return np.abs(pred_bpm - true_bpm).mean(axis=1)


def compute_metrics(pred_bpm: np.ndarray, true_bpm: np.ndarray) -> Metrics:
    pred, true = np.asarray(pred_bpm, np.float64), np.asarray(true_bpm, np.float64)
    err = pred - true
    total = ((true - true.mean()) ** 2).sum()
    return Metrics(
        mae=float(np.abs(err).mean()),
        rmse=float(np.sqrt((err**2).mean())),
        r2=float(1.0 - (err**2).sum() / total) if total > 0 else float("nan"),
        median_workout_mae=float(np.median(per_workout_mae(pred, true))),
        n_workouts=int(true.shape[0]),
    )


@torch.no_grad()
def predict(
    model: HRLSTM, inputs: torch.Tensor, users: torch.Tensor, device: torch.device | str = "cpu", batch_size: int = 256
) -> np.ndarray:
    """Heart rate in BPM for every step of every workout, (n, seq_len)."""
    model.eval()
    out = []
    for start in range(0, len(inputs), batch_size):
        x = inputs[start : start + batch_size].to(device, non_blocking=True)
        u = users[start : start + batch_size].to(device, non_blocking=True)
        out.append(model(x, u).float().cpu())
    return torch.cat(out).numpy() if out else np.empty((0, inputs.shape[1]), np.float32)


def noise_floor_mae(recorded_bpm: np.ndarray, clean_bpm: np.ndarray) -> float:
    """MAE of the noise-free heart rate against the recording: no model can do better on average."""
    return float(np.abs(np.asarray(recorded_bpm, np.float64) - clean_bpm).mean())


def evaluate_checkpoint(checkpoint: str | Path, data_path: str | None = None, device: str = "cpu", log=None) -> dict:
    """Metrics of a saved model: on its own test split when given the data it was trained on,
    else on every kept workout of the new file (all unseen)."""
    from dataclasses import replace

    from .checkpoint import load_checkpoint, restore_model
    from .console import say
    from .dataset import apply_filters, load_workouts
    from .experiment import RunConfig, load_clean_bpm, resolve_data_path, user_indices
    from .features import Normalizer, build_inputs, target
    from .splits import make_split

    log = log or say
    payload = load_checkpoint(checkpoint)
    cfg = RunConfig.from_dict(payload["config"])
    if data_path:
        cfg.data.path = str(data_path)
    path = resolve_data_path(cfg.data)
    raw = load_workouts(path, cfg.parse, skip_bad=cfg.data.skip_bad, cache=cfg.data.cache, log=log)
    same_data = raw.fingerprint == payload.get("data_fingerprint")
    if not same_data:  # new data: every workout is unseen, and a single recording is a valid set
        cfg.filters = replace(cfg.filters, min_workouts_per_user=1)
    workouts, report = apply_filters(raw, cfg.filters)
    log(report.summary())
    if same_data:
        rows, scope = make_split(workouts.meta, cfg.split).test, f"test split ({cfg.split.kind})"
    else:
        rows, scope = np.arange(len(workouts)), "all workouts (not the training data)"
    subset = workouts.subset(rows)
    norm = Normalizer(**payload["normalizer"])
    # Built over every kept workout, then cut: a feature may look at an athlete's earlier workouts.
    inputs = torch.from_numpy(build_inputs(workouts, cfg.features, norm)[rows])
    users = user_indices(subset.meta["user_id"], list(payload["user_ids"]))
    model = restore_model(payload).to(device)
    pred = predict(model, inputs, users, device)
    true = target(subset)
    metrics = compute_metrics(pred, true)
    result = {
        "checkpoint": str(checkpoint),
        "data_path": str(path),
        "data_fingerprint": workouts.fingerprint,
        "scope": scope,
        "model": cfg.model.model,
        "known_users_fraction": float((users != 0).float().mean()),
        **metrics.as_dict(),
        "baseline_mean_mae": float(np.abs(true - cfg.model.output_init_bpm).mean()),
    }
    clean = load_clean_bpm(path, workouts)
    if clean is not None:
        result["noise_floor_mae"] = noise_floor_mae(true, clean[rows])
    log(f"{cfg.model.model} on {scope} of {path.name}: {metrics.line()}")
    log(f"mean-HR baseline MAE {result['baseline_mean_mae']:.2f}" + (
        f" | noise floor {result['noise_floor_mae']:.2f} BPM" if "noise_floor_mae" in result else ""))
    return result
