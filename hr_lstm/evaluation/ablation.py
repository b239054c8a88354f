"""What each input and each model choice adds: one training run per row, against the default.

Every row is the default recipe with one thing changed, trained on the same
data, split and seed, so all rows score the same test workouts and each
difference to the default gets a bootstrap confidence interval over athletes
(`compare.mae_difference`). Cold start (`--split user`: athletes the model has
never seen) is a different test set, so it is its own table.

    python benchmarks/ablation.py                        # the full table, default recipe
    notebooks/06_ablation.ipynb                          # the core rows, fewer steps
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..console import say
from ..data.features import ALL_INPUTS, DEFAULT_INPUTS, ORIGINAL_INPUTS
from ..training.config import RunConfig
from ..training.prepare import test_athletes, test_truth
from ..training.run import run
from .compare import Difference, mae_difference

DEFAULT_ROW = "default: lstm_embeddings, default inputs"
ORIGINAL_ROW = "original project: lstm, original inputs"

# Each row: changes to the default RunConfig, as for RunConfig.override.
CORE_ROWS: dict[str, dict] = {
    DEFAULT_ROW: {},
    ORIGINAL_ROW: {"model.model": "lstm", "features.inputs": ORIGINAL_INPUTS},
    "lstm, default inputs (no user embedding)": {"model.model": "lstm"},
    "lstm_embeddings, original inputs": {"features.inputs": ORIGINAL_INPUTS},
    "user embedding as the LSTM's initial state": {"model.user_conditioning": "init_state"},
}
FULL_ROWS: dict[str, dict] = {
    **CORE_ROWS,
    "user embedding as initial state and per step": {"model.user_conditioning": "both"},
    # A one-hot input feeding the LSTM's input weights is exactly a learned sport embedding
    # appended to every step, so this row is the sport-embedding test.
    **{
        f"without {name}" + (" (= a per-step sport embedding)" if name == "sport" else ""): {
            "features.inputs": tuple(i for i in DEFAULT_INPUTS if i != name)
        }
        for name in DEFAULT_INPUTS
        if name not in ORIGINAL_INPUTS
    },
    # Inputs the default leaves out, each added back.
    **{
        f"with {name}": {"features.inputs": (*DEFAULT_INPUTS, name)}
        for name in ALL_INPUTS
        if name not in DEFAULT_INPUTS
    },
}
ROW_SETS = {"core": CORE_ROWS, "full": FULL_ROWS}


def configure(base: RunConfig, changes: dict, out_dir: str) -> RunConfig:
    return base.override({**changes, "train.out_dir": out_dir}).validate()


@dataclass
class Scored:
    metrics: dict
    pred_bpm: np.ndarray
    true_bpm: np.ndarray
    athletes: np.ndarray
    seconds: float


def _train(cfg: RunConfig) -> Scored:
    started = time.perf_counter()
    result = run(cfg, log=lambda *a: None)
    return Scored(
        result.metrics,
        result.test_pred_bpm,
        test_truth(result.prepared),
        test_athletes(result.prepared),
        time.perf_counter() - started,
    )


def _difference(reference: Scored, s: Scored, names: tuple[str, str]) -> Difference:
    return mae_difference(reference.pred_bpm, s.pred_bpm, s.true_bpm, s.athletes, names=names)


def _row(name: str, s: Scored, d: Difference | None = None, against: str = "default") -> dict:
    m = s.metrics
    row = {
        "row": name,
        "test MAE": m["test_mae"],
        "RMSE": m["test_rmse"],
        "R²": m["test_r2"],
        "× floor": m.get("mae_over_floor"),
        "best step": m.get("best_step", m["best_epoch"]),
        "s": round(s.seconds),
    }
    if d is not None:
        row.update({f"Δ MAE vs {against}": d.difference_bpm, "95% CI low": d.ci_low_bpm, "95% CI high": d.ci_high_bpm})
    return row


def run_ablation(base: RunConfig, rows: dict[str, dict], log=say) -> pd.DataFrame:
    """One row per configuration; the first row is the reference for the differences."""
    out, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, changes) in enumerate(rows.items()):
            scored = _train(configure(base, changes, f"{tmp}/row{i}"))
            reference = reference or scored
            out.append(
                _row(name, scored, None if scored is reference else _difference(reference, scored, ("default", name)))
            )
            log(f"{i + 1}/{len(rows)} {name}: test MAE {scored.metrics['test_mae']:.2f} BPM ({scored.seconds:.0f} s)")
    return pd.DataFrame(out).set_index("row")


def run_cold_start(base: RunConfig, log=say) -> tuple[pd.DataFrame, dict]:
    """The default and the original project's experiment on athletes held out entirely (`--split user`)."""
    cold = base.override({"split.kind": "user"})
    with tempfile.TemporaryDirectory() as tmp:
        original = _train(configure(cold, CORE_ROWS[ORIGINAL_ROW], f"{tmp}/original"))
        default = _train(configure(cold, {}, f"{tmp}/default"))
    d = _difference(original, default, (ORIGINAL_ROW, DEFAULT_ROW))
    table = pd.DataFrame([_row(ORIGINAL_ROW, original), _row(DEFAULT_ROW, default, d, against="original")]).set_index(
        "row"
    )
    log(f"cold start: {d.line()}")
    return table, d.as_dict()
