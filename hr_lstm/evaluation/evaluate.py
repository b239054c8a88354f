"""Metrics of a saved checkpoint, on its own test split or on new data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..console import say
from ..data.cache import load_workouts
from ..data.features import target
from ..data.filters import apply_filters
from ..data.source import load_clean_bpm, resolve_data_path
from ..data.splits import make_split
from ..errors import DataError
from ..metrics import compute_metrics, noise_floor_mae
from ..models.intervals import band_bpm, coverage_table
from ..models.warm_start import warm_start_table
from ..training.trained import TrainedModel


def evaluate_checkpoint(
    checkpoint: str | Path, data_path: str | None = None, device: str = "cpu", log=None, warm_start_min=()
) -> dict:
    """Metrics of a saved model: on its own test split when given the data it was trained on,
    else on every kept workout of the new file (all unseen). With `warm_start_min` (minutes k),
    also the MAE after minute k without and with a warm start from the first k measured minutes."""
    log = log or say
    trained = TrainedModel.load(checkpoint, device)
    payload, cfg = trained.payload, trained.config
    if data_path:
        cfg = cfg.override({"data.path": str(data_path)})
    path = resolve_data_path(cfg.data)
    if not data_path and cfg.data.path and not path.exists():
        raise DataError(
            f"{path}: no such file; it is the training data {Path(checkpoint).name} records (a relative path is "
            "read from the folder you run in); pass --data to evaluate on a file"
        )
    raw = load_workouts(path, cfg.parse, skip_bad=cfg.data.skip_bad, cache=cfg.data.cache, log=log)
    same_data = raw.fingerprint == payload.get("data_fingerprint")
    if not same_data:  # new data: every workout is unseen, and a single recording is a valid set
        cfg = cfg.override({"filters.min_workouts_per_user": 1})
    workouts, report = apply_filters(raw, cfg.filters)
    log(report.summary())
    reference_rows = np.arange(0)  # workouts that calibrate the warm start: the validation split, on the training data
    if same_data:
        split = make_split(workouts.meta, cfg.split)
        rows, scope = split.test, f"test split ({cfg.split.kind})"
        reference_rows = split.val if warm_start_min else reference_rows
    else:
        rows, scope = np.arange(len(workouts)), "all workouts (not the training data)"
    subset = workouts.subset(rows)
    users = trained.user_rows(subset.meta["user_id"])
    # One pass for the scored and the calibration rows: the inputs are built over every workout once.
    both = np.concatenate([rows, reference_rows])
    pred_both = trained.predict_bpm(workouts, trained.user_rows(workouts.meta["user_id"].iloc[both]), both)
    pred, reference_pred = pred_both[: len(rows)], pred_both[len(rows) :]
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
    log(
        f"mean-HR baseline MAE {result['baseline_mean_mae']:.2f}"
        + (f" | noise floor {result['noise_floor_mae']:.2f} BPM" if "noise_floor_mae" in result else "")
    )
    if trained.interval is not None:  # the calibrated 80% band: the share of measured points inside it
        sports = subset.meta["sport"].to_numpy()
        low, high = band_bpm(pred, subset.channel("time_s"), trained.interval, sports)
        table = coverage_table(true, low, high, sports)
        result["band_coverage"] = float(table["coverage"].iloc[-1])
        result["band_coverage_by_sport"] = table.set_index("sport")["coverage"].drop("all").round(4).to_dict()
        shown = ", ".join(f"{r.sport} {r.coverage:.0%}" for r in table.itertuples() if r.sport != "all")
        log(f"80% band: {result['band_coverage']:.1%} of measured points inside ({shown})")
    if warm_start_min:
        reference = None
        if len(reference_rows):
            val = workouts.subset(reference_rows)
            reference = (reference_pred, target(val), val.channel("time_s"))
        result["warm_start"] = warm_start_table(pred, true, subset.channel("time_s"), warm_start_min, reference)
        for row in result["warm_start"]:
            calibrated = row.get("calibrated_warm_start_mae_after_k_bpm")
            log(
                f"after minute {row['minutes']:g}: MAE {row['mae_after_k_bpm']:.2f} BPM; with a warm start from the "
                f"first {row['minutes']:g} min {row['warm_start_mae_after_k_bpm']:.2f}"
                + (f", calibrated on the validation split {calibrated:.2f}" if calibrated is not None else "")
            )
    return result
