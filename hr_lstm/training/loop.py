"""The training loop: loss, optimiser, learning-rate schedule, the step budget, early stopping, resume.

The whole training split lives in memory as tensors (on the GPU when training there),
batches are index slices, and the only host sync per validation check is reading the loss
since the last one: nothing but the step runs per batch.
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
from .budget import plan_budget
from .config import LOSSES, LR_SCHEDULES, TrainConfig
from .prepare import PreparedData


@dataclass
class History:
    epoch: list[float] = field(default_factory=list)  # passes over the training split at each check
    step: list[int] = field(default_factory=list)  # optimiser steps at each check
    train_loss: list[float] = field(default_factory=list)  # MSE, BPM²
    train_mae: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_mae: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: float = 0
    best_step: int = 0


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


def make_scheduler(opt, cfg: TrainConfig, total_steps: int):
    if cfg.lr_schedule == "constant":
        return None
    if cfg.lr_schedule == "onecycle":  # spans the whole budget: the run ends at a settled minimum
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=total_steps, pct_start=0.1, anneal_strategy="cos"
        )
    raise HRLSTMError(f"unknown learning-rate schedule {cfg.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")


def train_batches(
    model, opt, x, y, users, batches, cfg: TrainConfig, scheduler=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step per batch (index tensors into the in-memory tensors); returns summed squared
    and absolute errors as device tensors, so nothing waits for the GPU until the checks."""
    loss_of = loss_function(cfg)
    amp = torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16")
    sq_sum = torch.zeros((), device=x.device)
    abs_sum = torch.zeros((), device=x.device)
    for idx in tqdm(batches, leave=False, disable=not attached_to_terminal(), unit="batch"):
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


def train_epoch(model, opt, x, y, users, order, cfg: TrainConfig, scheduler=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over `order` in batches of cfg.batch_size: `train_batches` over its slices."""
    batches = [order[start : start + cfg.batch_size] for start in range(0, len(order), cfg.batch_size)]
    return train_batches(model, opt, x, y, users, batches, cfg, scheduler)


class BatchStream:
    """Batches in epoch order, reshuffled at each epoch's end, resumable mid-epoch.

    Epoch e (from 1) draws its permutation as the epoch-based loop did (the shuffle generator, or
    the distributed sampler's set_epoch), so `--epochs N` runs are what they were."""

    def __init__(self, n: int, batch_size: int, shuffle: torch.Generator, sampler, device):
        self.n, self.batch_size, self.shuffle, self.sampler, self.device = n, batch_size, shuffle, sampler, device
        self.epoch, self.order, self.position = 0, None, 0

    def take(self, count: int) -> list[torch.Tensor]:
        batches = []
        for _ in range(count):
            if self.order is None or self.position >= len(self.order):
                self.epoch += 1
                self.order, self.position = _epoch_order(self.n, self.epoch, self.shuffle, self.sampler, self.device), 0
            batches.append(self.order[self.position : self.position + self.batch_size])
            self.position += self.batch_size
        return batches

    def state(self) -> dict:
        order = None if self.order is None else self.order.cpu()
        return {"epoch": self.epoch, "order": order, "position": self.position}

    def load(self, state: dict) -> None:
        self.epoch, self.position = state["epoch"], state["position"]
        self.order = None if state["order"] is None else state["order"].to(self.device)


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
    """Adam over the run's budget of optimiser steps (training/budget.py); early stopping on the
    validation MAE, checked `CHECKS_PER_RUN` times (or after each epoch under --epochs); the best
    weights restored at the end.

    The training split is moved to the device once (the full FitRec set is ~2 GB). After every
    check the main process writes `state_path` (weights, optimizer, RNG, where the epoch stands,
    history), which `--resume` continues from, so a kill loses at most one check's steps.
    """
    x_tr, y_tr, u_tr = (t.to(device) for t in data.part("train"))
    x_va, y_va, u_va = (t.to(device) for t in data.part("val"))
    y_va_np = y_va.cpu().numpy()
    opt = make_optimizer(model, cfg, device)
    loss_function(cfg)  # an unknown loss fails before any work
    budget = plan_budget(cfg, math.ceil(len(x_tr) / env.world_size) if env.enabled else len(x_tr))
    scheduler = make_scheduler(opt, cfg, budget.total_steps)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    sampler = None
    if env.enabled:
        sampler = DistributedSampler(
            range(len(x_tr)), num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=cfg.seed
        )
    stream = BatchStream(len(x_tr), cfg.batch_size, shuffle, sampler, device)
    step_model = (
        DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None) if env.enabled else model
    )
    if cfg.compile:
        step_model = torch.compile(step_model)
    history, step = History(), 0
    best_mae, best_state, stale = math.inf, copy.deepcopy(model.state_dict()), 0
    if cfg.resume and state_path is not None and state_path.exists():
        payload = load_checkpoint(state_path, resume_file=True)
        if run_config is not None and _recipe(payload["config"]) != _recipe(run_config):
            raise HRLSTMError(
                f"{state_path}: --resume with different data, model or features; remove --resume to start over"
            )
        saved = payload["training_state"]
        model.load_state_dict(payload["state_dict"])  # the last check's weights
        opt.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler"):
            if saved["scheduler"].get("total_steps") != scheduler.total_steps:
                raise HRLSTMError(
                    f"{state_path}: --resume with a different --epochs or --steps (or data) under --lr-schedule "
                    f"{cfg.lr_schedule}, whose schedule spans the run; use the same budget"
                )
            scheduler.load_state_dict(saved["scheduler"])
        shuffle.set_state(saved["shuffle_rng"])
        history = History(**saved["history"])
        best_mae, best_state, stale = saved["best_mae"], saved["best_model"], saved["stale"]
        if "batches" in saved:
            step = saved["step"]
            stream.load(saved["batches"])
        elif history.epoch:  # a state from the epoch-based loop: it stopped at an epoch's end
            stream.epoch = history.epoch[-1]
            step = stream.epoch * budget.steps_per_epoch
        log(f"Resuming from {state_path} after step {step:,} (best val MAE {best_mae:.2f})")
    log(f"Budget: {budget.describe()}")

    while step < budget.total_steps and stale < cfg.patience:
        started = time.perf_counter()
        model.train()
        batches = stream.take(min(budget.eval_every, budget.total_steps - step))
        sq_sum, abs_sum = train_batches(step_model, opt, x_tr, y_tr, u_tr, batches, cfg, scheduler)
        step += len(batches)
        count = torch.tensor(float(sum(len(b) for b in batches) * y_tr.shape[1]), device=device)
        sq_sum, abs_sum, count = dist.all_sum(env, sq_sum, abs_sum, count)
        train_loss, train_mae = (sq_sum / count).item(), (abs_sum / count).item()  # the check's one sync
        if not math.isfinite(train_loss):
            raise HRLSTMError(f"training diverged by step {step:,} (loss {train_loss}); try a lower --lr")

        # Every rank scores the whole (small) validation split with identical weights, so all
        # ranks take the same early-stopping decision without talking.
        val_err = predict_bpm(model, x_va, u_va, device) - y_va_np
        val_mae, val_loss = float(np.abs(val_err).mean()), float((val_err**2).mean())
        seconds = time.perf_counter() - started
        epoch = budget.epoch_at(step)
        for name, value in zip(
            ("epoch", "step", "train_loss", "train_mae", "val_loss", "val_mae", "seconds"),
            (epoch, step, train_loss, train_mae, val_loss, val_mae, seconds),
        ):
            getattr(history, name).append(value)

        improved = val_mae < best_mae
        where = (
            f"epoch {epoch:3d}/{cfg.epochs}"
            if budget.by_epochs
            else f"step {step:{len(str(budget.total_steps))}d}/{budget.total_steps} (epoch {epoch:5.1f})"
        )
        log(
            f"{where} | train MSE {train_loss:8.2f} MAE {train_mae:6.2f} | "
            f"val MAE {val_mae:6.2f}{' *' if improved else '  '} | {seconds:5.1f} s"
        )
        if improved:
            best_mae, best_state, stale = val_mae, copy.deepcopy(model.state_dict()), 0
            history.best_epoch, history.best_step = epoch, step
            if on_improve and env.is_main:
                on_improve(model, history)
        else:
            stale += 1
            if stale >= cfg.patience:
                log(
                    f"Early stop: no better validation MAE for {cfg.patience} checks "
                    f"({cfg.patience * budget.eval_every:,} steps; best {best_mae:.2f} at step {history.best_step:,})"
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
                "step": step,
                "batches": stream.state(),
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
