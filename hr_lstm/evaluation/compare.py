"""Is model B better than model A on the same test workouts? A bootstrap answer.

Two models scored on the same workouts differ by a few tenths of a BPM: is
that the models or the luck of which athletes landed in the test split? The
confidence interval comes from resampling athletes, not workouts or time
steps: one athlete's workouts share a physiology, so treating them as
independent would make the interval too narrow. scipy's paired bootstrap does
the resampling (BCa intervals).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass
class Difference:
    """MAE(b) - MAE(a) in BPM over the same workouts; negative means b is better."""

    a: str
    b: str
    mae_a: float
    mae_b: float
    difference_bpm: float
    ci_low_bpm: float
    ci_high_bpm: float
    confidence: float
    n_athletes: int
    n_workouts: int

    @property
    def significant(self) -> bool:
        return self.ci_high_bpm < 0 or self.ci_low_bpm > 0

    def line(self) -> str:
        verdict = (
            f"{self.b} better"
            if self.ci_high_bpm < 0
            else f"{self.a} better"
            if self.ci_low_bpm > 0
            else "no clear difference"
        )
        return (
            f"MAE {self.b} - {self.a}: {self.difference_bpm:+.2f} BPM "
            f"({self.confidence:.0%} CI {self.ci_low_bpm:+.2f} to {self.ci_high_bpm:+.2f}, "
            f"{self.n_athletes} athletes, {self.n_workouts} workouts): {verdict}"
        )

    def as_dict(self) -> dict:
        return asdict(self) | {"significant": self.significant}

    @classmethod
    def from_dict(cls, d: dict) -> "Difference":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _pooled_difference(sum_a, sum_b, count, axis=-1):
    return (sum_b.sum(axis=axis) - sum_a.sum(axis=axis)) / count.sum(axis=axis)


def mae_difference(
    pred_a_bpm: np.ndarray,
    pred_b_bpm: np.ndarray,
    true_bpm: np.ndarray,
    athletes,
    names: tuple[str, str] = ("a", "b"),
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Difference:
    """Pooled test MAE of b minus a with a confidence interval from resampling athletes.

    `pred_*_bpm` and `true_bpm` are (workouts, steps); `athletes` names each workout's athlete.
    """
    true = np.asarray(true_bpm, np.float64)
    if np.shape(pred_a_bpm) != true.shape or np.shape(pred_b_bpm) != true.shape:
        raise ValueError(
            f"predictions {np.shape(pred_a_bpm)} and {np.shape(pred_b_bpm)} do not match truth {true.shape}"
        )
    per_workout = pd.DataFrame(
        {
            "athlete": np.asarray(athletes),
            "abs_a": np.abs(np.asarray(pred_a_bpm, np.float64) - true).sum(axis=1),
            "abs_b": np.abs(np.asarray(pred_b_bpm, np.float64) - true).sum(axis=1),
            "steps": np.full(len(true), true.shape[1], np.float64),
        }
    )
    per_athlete = per_workout.groupby("athlete")[["abs_a", "abs_b", "steps"]].sum()
    samples = tuple(per_athlete[c].to_numpy() for c in ("abs_a", "abs_b", "steps"))
    point = float(_pooled_difference(*samples))
    if len(per_athlete) < 2:
        low = high = float("nan")
    elif np.allclose(samples[0], samples[1]):  # identical errors: nothing to resample (BCa is undefined)
        low = high = point
    else:
        result = stats.bootstrap(
            samples,
            _pooled_difference,
            paired=True,
            vectorized=True,
            confidence_level=confidence,
            n_resamples=n_resamples,
            random_state=np.random.default_rng(seed),
        )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    steps = per_workout["steps"].sum()
    return Difference(
        a=names[0],
        b=names[1],
        mae_a=float(per_workout["abs_a"].sum() / steps),
        mae_b=float(per_workout["abs_b"].sum() / steps),
        difference_bpm=point,
        ci_low_bpm=low,
        ci_high_bpm=high,
        confidence=confidence,
        n_athletes=len(per_athlete),
        n_workouts=len(true),
    )
