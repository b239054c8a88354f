"""Metrics for heart-rate curves: pooled MAE / RMSE / R², per-workout MAE, the noise floor.

Pooled metrics treat every time step of every workout alike (what the original project
reported); the per-workout MAE distribution says how a typical workout fares. On simulated
data the recorded heart rate carries sensor noise and strap artefacts that no model can
predict; the MAE between recorded and noise-free heart rate is the floor a perfect model
would reach. Plain numpy, used by every layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


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


def noise_floor_mae(recorded_bpm: np.ndarray, clean_bpm: np.ndarray) -> float:
    """MAE of the noise-free heart rate against the recording: no model can do better on average."""
    return float(np.abs(np.asarray(recorded_bpm, np.float64) - clean_bpm).mean())
