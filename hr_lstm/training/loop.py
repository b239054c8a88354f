"""The training loop: loss, optimiser, learning-rate schedule, epochs, early stopping, resume.

The whole training split lives in memory as tensors (on the GPU when training there),
batches are index slices, and the only host sync per epoch is reading the epoch's loss:
nothing but the step runs per batch.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from ..console import attached_to_terminal, say
from ..errors import HRLSTMError
from ..models.checkpoint import load_checkpoint, plain, save_checkpoint
from ..models.lstm import HRLSTM, predict_bpm
from . import distributed as dist
from .config import LOSSES, LR_SCHEDULES, TrainConfig
from .prepare import PreparedData


@dataclass
class History:
    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)  # MSE, BPM²
    train_mae: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_mae: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int = 0


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """Adam; on a GPU the fused kernel (one launch for all parameters), which matters for the small
    models here, whose steps are launch-bound."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=device.type == "cuda")


def loss_function(cfg: TrainConfig):
    if cfg.loss == "mse":
        return lambda err: err.pow(2).mean()
    if cfg.loss == "mae":
        return lambda err: err.abs().mean()
    if cfg.loss == "huber":
        return lambda err: nn.functional.huber_loss(err, torch.zeros_like(err), delta=cfg.huber_delta_bpm)
    raise HRLSTMError(f"unknown loss {cfg.loss!r}; choose one of {', '.join(LOSSES)}")


def make_scheduler(opt, cfg: TrainConfig, steps_per_epoch: int):
    if cfg.lr_schedule == "constant":
        return None
    if cfg.lr_schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.1, anneal_strategy="cos"
        )
    raise HRLSTMError(f"unknown learning-rate schedule {cfg.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")


def train_epoch(model, opt, x, y, users, order, cfg: TrainConfig, scheduler=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over `order` (indices into the in-memory tensors); returns summed squared and
    absolute errors as device tensors, so nothing waits for the GPU until the epoch ends."""
    loss_of = loss_function(cfg)
    amp = torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16")
    sq_sum = torch.zeros((), device=x.device)
    abs_sum = torch.zeros((), device=x.device)
    batches = range(0, len(order), cfg.batch_size)
    bar = tqdm(batches, leave=False, disable=not attached_to_terminal(), unit="batch")
    for start in bar:
        idx = order[start : start + cfg.batch_size]
        with amp:
            pred = model(x[idx], users[idx])
        err = pred.float() - y[idx]
        loss = loss_of(err)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip, foreach=True)
        opt.step()
        if scheduler is not None:
            scheduler.step()
        sq_sum += err.detach().pow(2).sum()
        abs_sum += err.detach().abs().sum()
    return sq_sum, abs_sum


def _recipe(config: dict) -> dict:
    """What must match for --resume to continue a run (epochs, patience and device may change)."""
    return {k: v for k, v in plain(config).items() if k != "train"}


def _epoch_order(n: int, epoch: int, shuffle: torch.Generator, sampler, device) -> torch.Tensor:
    if sampler is None:
        return torch.randperm(n, generator=shuffle).to(device)
    sampler.set_epoch(epoch)  # every rank draws the same permutation and takes its own share
    return torch.as_tensor(list(iter(sampler)), device=device)


def fit(
    model: HRLSTM,
    data: PreparedData,
    cfg: TrainConfig,
    device: torch.device,
    log=say,
    on_improve=None,
    state_path: Path | None = None,
    env: dist.DistEnv = dist.DistEnv(),
    run_config: dict | None = None,
) -> History:
    """Adam on MSE; early stopping on validation MAE; the best weights restored at the end.

    The training split is moved to the device once (the full FitRec set is ~2 GB). After every
    epoch the main process writes `state_path` (weights, optimizer, RNG, history), which
    `--resume` continues from, so a kill loses at most one epoch.
    """
    x_tr, y_tr, u_tr = (t.to(device) for t in data.part("train"))
    x_va, y_va, u_va = (t.to(device) for t in data.part("val"))
    y_va_np = y_va.cpu().numpy()
    opt = make_optimizer(model, cfg, device)
    loss_function(cfg)  # an unknown loss fails before any work
    per_rank = math.ceil(len(x_tr) / env.world_size) if env.enabled else len(x_tr)
    scheduler = make_scheduler(opt, cfg, math.ceil(per_rank / cfg.batch_size))
    shuffle = torch.Generator().manual_seed(cfg.seed)
    sampler = None
    if env.enabled:
        sampler = DistributedSampler(
            range(len(x_tr)), num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=cfg.seed
        )
    step_model = (
        DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None) if env.enabled else model
    )
    if cfg.compile:
        step_model = torch.compile(step_model)
    history, first_epoch = History(), 1
    best_mae, best_state, stale = math.inf, copy.deepcopy(model.state_dict()), 0
    if cfg.resume and state_path is not None and state_path.exists():
        payload = load_checkpoint(state_path)
        if run_config is not None and _recipe(payload["config"]) != _recipe(run_config):
            raise HRLSTMError(
                f"{state_path}: --resume with different data, model or features; remove --resume to start over"
            )
        saved = payload["training_state"]
        model.load_state_dict(payload["state_dict"])  # the last epoch's weights
        opt.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler"):
            if saved["scheduler"].get("total_steps") != scheduler.total_steps:
                raise HRLSTMError(
                    f"{state_path}: --resume with a different --epochs (or data) under --lr_schedule "
                    f"{cfg.lr_schedule}, whose schedule spans the run; use the same --epochs"
                )
            scheduler.load_state_dict(saved["scheduler"])
        shuffle.set_state(saved["shuffle_rng"])
        history = History(**saved["history"])
        best_mae, best_state, stale = saved["best_mae"], saved["best_model"], saved["stale"]
        first_epoch = history.epoch[-1] + 1 if history.epoch else 1
        log(f"Resuming from {state_path} after epoch {first_epoch - 1} (best val MAE {best_mae:.2f})")

    for epoch in range(first_epoch, cfg.epochs + 1):
        if stale >= cfg.patience:
            break
        started = time.perf_counter()
        model.train()
        order = _epoch_order(len(x_tr), epoch, shuffle, sampler, device)
        sq_sum, abs_sum = train_epoch(step_model, opt, x_tr, y_tr, u_tr, order, cfg, scheduler)
        count = torch.tensor(float(len(order) * y_tr.shape[1]), device=device)
        sq_sum, abs_sum, count = dist.all_sum(env, sq_sum, abs_sum, count)
        train_loss, train_mae = (sq_sum / count).item(), (abs_sum / count).item()  # the epoch's one sync
        if not math.isfinite(train_loss):
            raise HRLSTMError(f"training diverged at epoch {epoch} (loss {train_loss}); try a lower --lr")

        # Every rank scores the whole (small) validation split with identical weights, so all
        # ranks take the same early-stopping decision without talking.
        val_err = predict_bpm(model, x_va, u_va, device) - y_va_np
        val_mae, val_loss = float(np.abs(val_err).mean()), float((val_err**2).mean())
        seconds = time.perf_counter() - started
        for name, value in zip(
            ("epoch", "train_loss", "train_mae", "val_loss", "val_mae", "seconds"),
            (epoch, train_loss, train_mae, val_loss, val_mae, seconds),
        ):
            getattr(history, name).append(value)

        improved = val_mae < best_mae
        log(
            f"epoch {epoch:3d}/{cfg.epochs} | train MSE {train_loss:8.2f} MAE {train_mae:6.2f} | "
            f"val MAE {val_mae:6.2f}{' *' if improved else '  '} | {seconds:5.1f} s"
        )
        if improved:
            best_mae, best_state, stale, history.best_epoch = val_mae, copy.deepcopy(model.state_dict()), 0, epoch
            if on_improve and env.is_main:
                on_improve(model, history)
        else:
            stale += 1
            if stale >= cfg.patience:
                log(
                    f"Early stop: no better validation MAE for {cfg.patience} epochs (best {best_mae:.2f} at epoch {history.best_epoch})"
                )
        if state_path is not None and env.is_main:
            training_state = {
                "optimizer": opt.state_dict(),
                "shuffle_rng": shuffle.get_state(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "history": history.__dict__,
                "best_mae": best_mae,
                "best_model": best_state,
                "stale": stale,
            }
            save_checkpoint(
                state_path,
                model.state_dict(),
                training_state=training_state,
                config=run_config or {},
                normalizer={},
                user_ids=[],
            )
    model.load_state_dict(best_state)
    return history
