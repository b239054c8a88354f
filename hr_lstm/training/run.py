"""Train a heart-rate model end to end: prepare the data, fit, test, write checkpoint, curves and metrics.

hr-lstm train --model lstm_embeddings --epochs 100 --device cuda
python -m hr_lstm.train --model lstm --hidden_size 64 --num_layers 2   # the original project's flags
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..console import say
from ..errors import CheckpointError
from ..metrics import compute_metrics, noise_floor_mae
from ..models.checkpoint import atomic_torch_save, plain, save_checkpoint
from ..models.intervals import IntervalFit, band_bpm, coverage_table, fit_intervals, fit_intervals_strangers
from ..models.lstm import HRLSTM, build_model, predict_bpm
from ..models.warm_start import WARM_START_MINUTES, fit_warm_start
from ..paths import check_writable, folder_lock, write_text_atomic
from . import distributed as dist
from .config import RunConfig
from .curves import save_training_curves
from .loop import History, fit
from .prepare import PreparedData, configure_model, prepare
from .runtime import configure_backends, resolve_device
from .trained import TrainedModel


@dataclass
class RunResult:
    config: RunConfig
    prepared: PreparedData
    model: HRLSTM
    history: History
    metrics: dict
    test_pred_bpm: np.ndarray  # (n_test, seq_len), rows in prepared.split.test order
    checkpoint_path: Path
    metrics_path: Path


def run(cfg: RunConfig, log=say, command: str | None = None) -> RunResult:
    """The whole recipe: prepare data, train, test, and write checkpoint, curves and metrics (and `command`, the
    command line that asked for it, when given).

    Under torchrun every process trains its share; only rank 0 logs and writes files, and
    holds `{out}/.lock` for the whole run: a second run into the same folder stops at once.
    """
    env = dist.detect()
    if env.is_main:  # a read-only or missing-permission folder stops here, not after the first epoch
        check_writable(Path(cfg.train.out_dir))
    with folder_lock(Path(cfg.train.out_dir)) if env.is_main else nullcontext():
        return _run(cfg, log, env, command)


def _run(cfg: RunConfig, log, env, command: str | None = None) -> RunResult:
    device = dist.setup(env, resolve_device(cfg.train.device))
    log = log if env.is_main else (lambda *a: None)
    configure_backends(cfg.train, device, env)
    torch.manual_seed(cfg.train.seed)
    if not env.is_main:
        dist.barrier(env)  # let rank 0 simulate / parse / cache the data first
    data = prepare(cfg, log)
    if env.is_main:
        dist.barrier(env)
    cfg.model.n_inputs = int(data.inputs.shape[-1])
    cfg.model.n_users = len(data.user_ids)
    cfg.model.output_init_bpm = data.train_mean_bpm
    cfg.model.output_scale_bpm = float(data.target_bpm[data.split.train].std())
    configure_model(cfg, data)
    model = build_model(cfg.model).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    procs = f" x {env.world_size} processes" if env.enabled else ""
    log(f"Model {cfg.model.model}: {n_params:,} parameters on {device}{procs}; inputs {', '.join(cfg.features.inputs)}")

    out_dir = Path(cfg.train.out_dir)
    ckpt_path = out_dir / f"{cfg.model.model}_best.pt"
    common = dict(
        config=cfg.as_dict(),
        normalizer=data.normalizer.__dict__,
        user_ids=data.user_ids,
        data_fingerprint=data.workouts.fingerprint,
        data_path=str(data.workouts.source),
    )

    def save_best(model, history):  # a killed run still leaves its best model behind
        save_checkpoint(
            ckpt_path,
            model.state_dict(),
            metrics={"best_epoch": history.best_epoch, "best_step": history.best_step},
            **common,
        )

    started = time.perf_counter()
    state_path = out_dir / f"{cfg.model.model}_last.pt"
    history = fit(
        model,
        data,
        cfg.train,
        device,
        log,
        on_improve=save_best,
        state_path=state_path,
        env=env,
        run_config=common["config"],
    )
    train_seconds = time.perf_counter() - started

    metrics, test_pred = test_metrics(model, data, device)
    interval, band_metrics, warm_start, unknown = validation_fits(model, data, device, test_pred)
    metrics.update(band_metrics)
    metrics.update(
        model=cfg.model.model,
        val_mae=min(history.val_mae),
        best_epoch=history.best_epoch,
        best_step=history.best_step,
        epochs_run=history.epoch[-1] if history.epoch else 0,
        steps_run=history.step[-1] if history.step else 0,
        train_seconds=round(train_seconds, 2),
        n_parameters=n_params,
        device=str(device),
        world_size=env.world_size,
        hr_lstm_version=__version__,
        command=command,
        torch_version=str(torch.__version__),
        history=history.__dict__,
        **common,
    )
    metrics_path = out_dir / f"{cfg.model.model}_metrics.json"
    if env.is_main:
        band = {"interval": interval.as_dict()} if interval is not None else {}
        band.update(unknown)
        save_checkpoint(ckpt_path, model.state_dict(), metrics=metrics, warm_start=warm_start, **common, **band)
        write_text_atomic(metrics_path, json.dumps(plain(metrics), indent=1, allow_nan=False))
        save_training_curves(history, out_dir / f"{cfg.model.model}_training_curves.png", cfg.model.model)
        log(report_line(metrics))
        log(f"Wrote {ckpt_path}, {metrics_path.name} and {cfg.model.model}_training_curves.png")
    dist.teardown(env)
    return RunResult(cfg, data, model, history, metrics, test_pred, ckpt_path, metrics_path)


def test_metrics(model: HRLSTM, data: PreparedData, device: torch.device) -> tuple[dict, np.ndarray]:
    """Test metrics next to the mean-heart-rate baseline and, on simulated data, the noise floor."""
    x, y, u = data.part("test")
    pred = predict_bpm(model, x, u, device)
    y = y.numpy()
    metrics = compute_metrics(pred, y).as_dict("test_")
    metrics.pop("test_n_workouts")
    metrics.update(n_train=len(data.split.train), n_val=len(data.split.val), n_test=len(data.split.test))
    metrics["baseline_mean_mae"] = float(np.abs(y - data.train_mean_bpm).mean())
    # How far in elapsed time the model has seen heart rate: a plan past it is extrapolation (inference/plan.py).
    metrics["longest_train_workout_s"] = float(np.nanmax(data.workouts.channel("time_s")[data.split.train]))
    if data.clean_bpm is not None:
        floor = noise_floor_mae(y, data.clean_bpm[data.split.test])
        metrics["noise_floor_mae"] = floor
        metrics["mae_over_floor"] = metrics["test_mae"] / floor if floor > 0 else None
    return metrics, pred


def validation_fits(
    model: HRLSTM, data: PreparedData, device, test_pred: np.ndarray
) -> tuple[IntervalFit | None, dict, dict, dict]:
    """What is calibrated on the validation split, from one prediction of it: the 80% band (models/intervals.py)
    with its coverage on the test split, overall and per sport family; and for each warm-start k, how much of
    the gap at minute k carries over on workouts of athletes the model knows that it never fitted
    (models/warm_start.py), which a personalisation borrows, having only a handful of its athlete's own
    (`fit_personal_warm_start`); and, for a model with an embedding, the checkpoint fields for an athlete it
    does not know: `interval_unknown`, the band fitted by athlete on the validation athletes predicted with the
    mean embedding (`fit_intervals_strangers`), and `warm_start_unknown`, the warm-start calibration on those
    predictions. None and nothing else without validation workouts."""
    if not len(data.split.val):
        return None, {}, {}, {}
    x, y, u = data.part("val")
    time_s, sports = data.workouts.channel("time_s"), data.workouts.meta["sport"].to_numpy()
    val, test = data.split.val, data.split.test
    val_pred, val_true = predict_bpm(model, x, u, device), y.numpy()
    fit = fit_intervals(val_pred, val_true, time_s[val], sports[val])
    low, high = band_bpm(test_pred, time_s[test], fit, sports[test])
    table = coverage_table(data.target_bpm[torch.as_tensor(test)].numpy(), low, high, sports[test]).set_index("sport")
    figures = {
        "test_band_coverage": float(table.loc["all", "coverage"]),
        "test_band_coverage_by_sport": table["coverage"].drop("all").round(4).to_dict(),
    }
    warm_start = {
        f"{k:g}": asdict(fit_warm_start(val_pred, val_true, time_s[val], k, intercept=False))
        for k in WARM_START_MINUTES
        if k
    }
    # The band for an athlete the model does not know: the same athletes as strangers (the mean embedding), by
    # athlete. Their other workouts were fitted, so it is narrower than a real stranger's (docs/intervals.md).
    athletes, unknown = data.workouts.meta["user_id"].to_numpy()[val], {}
    if getattr(model, "user_embedding", None) is not None and len(set(athletes)) >= 2:
        strangers = predict_bpm(model, x, torch.zeros_like(u), device)
        band = fit_intervals_strangers(
            strangers, val_true, time_s[val], athletes, fitted_on="validation athletes, mean embedding"
        )
        unknown["interval_unknown"] = band.as_dict()
        # And how much of a stranger's gap at minute k carries over: mostly their own level, which lasts.
        unknown["warm_start_unknown"] = {
            f"{k:g}": asdict(fit_warm_start(strangers, val_true, time_s[val], k, intercept=False))
            for k in WARM_START_MINUTES
            if k
        }
    return fit, figures, warm_start, unknown


def calibrate_band(checkpoint, device: str = "cpu", log=say) -> tuple[IntervalFit, dict, dict]:
    """Fit a trained (not personalised) checkpoint's 80% band and warm-start calibration again on its validation
    split and write them into the checkpoint: for checkpoints written before them, or after a method changed.
    The data must be the data it was trained on (checked by fingerprint)."""
    trained = TrainedModel.load(checkpoint, device)
    if trained.personalisation:
        raise CheckpointError(f"{checkpoint}: a personalised checkpoint; personalize again to recalibrate its band")
    data = prepare(trained.config, log)
    if data.workouts.fingerprint != trained.payload.get("data_fingerprint"):
        raise CheckpointError(f"{checkpoint}: its training data changed (fingerprint differs); cannot recalibrate")
    x, y, u = data.part("test")
    fit, figures, warm_start, unknown = validation_fits(
        trained.model, data, trained.device, predict_bpm(trained.model, x, u, trained.device)
    )
    payload = dict(
        trained.payload,
        interval=fit.as_dict(),
        warm_start=warm_start,
        metrics=dict(trained.metrics, **figures),
        **unknown,
    )
    atomic_torch_save(payload, Path(checkpoint))
    return fit, figures, warm_start


def report_line(m: dict) -> str:
    line = (
        f"Test: MAE {m['test_mae']:.2f} BPM | RMSE {m['test_rmse']:.2f} | R² {m['test_r2']:.3f} | "
        f"median workout MAE {m['test_median_workout_mae']:.2f} | mean-HR baseline MAE {m['baseline_mean_mae']:.2f}"
    )
    if m.get("test_band_coverage") is not None:
        line += f" | 80% band covers {m['test_band_coverage']:.0%}"
    if m.get("noise_floor_mae") is not None:
        line += f" | noise floor {m['noise_floor_mae']:.2f} (model {m['mae_over_floor']:.2f}x floor)"
    return line
