"""Train a heart-rate LSTM: the loop, early stopping, checkpoints, metrics.

    hr-lstm train --model lstm_embeddings --epochs 100 --device cuda
    python -m hr_lstm.train --model lstm --hidden_size 64 --num_layers 2   # the seed's flags

The whole training split lives in memory as tensors (on the GPU when
training there), batches are index slices, and the only host sync per epoch
is reading the epoch's loss: nothing but the step runs per batch.
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from . import __version__
from . import distributed as dist
from .checkpoint import load_checkpoint, plain, save_checkpoint
from .console import attached_to_terminal, say
from .errors import HRLSTMError
from .evaluate import compute_metrics, noise_floor_mae, predict
from .experiment import LOSSES, LR_SCHEDULES, Prepared, RunConfig, TrainConfig, prepare
from .models import HRLSTM, build_model


@dataclass
class History:
    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)  # MSE, BPM²
    train_mae: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_mae: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int = 0


@dataclass
class RunResult:
    config: RunConfig
    prepared: Prepared
    model: HRLSTM
    history: History
    metrics: dict
    test_pred_bpm: np.ndarray  # (n_test, seq_len), rows in prepared.split.test order
    checkpoint_path: Path
    metrics_path: Path


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise HRLSTMError("--device cuda: no CUDA GPU visible to torch (CPU build of torch, or no driver?)")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise HRLSTMError(f"--device {name}: choose cpu, cuda or auto")
    return torch.device(name)


# glibc serves blocks over its mmap threshold with fresh mmaps and unmaps them on free, and trims
# the heap's free top back to the OS: a CPU LSTM step allocates and frees tens of MB, so every step
# page-faulted them in again (about 19,000 faults and a third of the step's time at the default
# shape on 2 cores, benchmarks/cpu_memory_reuse.py). Keeping up to this much on the heap ends that.
KEEP_FREED_BYTES = 256 << 20
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, <malloc.h>


def keep_freed_memory(limit_bytes: int = KEEP_FREED_BYTES) -> bool:
    """Ask glibc's allocator to reuse freed blocks up to `limit_bytes`; False where there is no glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # macOS, Windows, musl: their allocators differ; nothing to set
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, limit_bytes)) and bool(mallopt(M_TRIM_THRESHOLD, limit_bytes))


def configure_backends(cfg: TrainConfig, device: torch.device, env: dist.DistEnv) -> None:
    """cuDNN on unless --no-cudnn (the seed's GTX 1060 workaround costs 8-80x); TF32 matmuls on
    GPUs (LSTM gates tolerate it, heart rate needs ~1 BPM); on CPUs, threads = this process's share
    of cores, and freed memory kept for the next step."""
    torch.backends.cudnn.enabled = cfg.cudnn
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        local_procs = int(os.environ.get("LOCAL_WORLD_SIZE", env.world_size))
        torch.set_num_threads(cfg.threads or max(1, cores // local_procs))
        keep_freed_memory()


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
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch,
                                                   pct_start=0.1, anneal_strategy="cos")
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


def fit(model: HRLSTM, data: Prepared, cfg: TrainConfig, device: torch.device, log=say, on_improve=None,
        state_path: Path | None = None, env: dist.DistEnv = dist.DistEnv(), run_config: dict | None = None) -> History:
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
        sampler = DistributedSampler(range(len(x_tr)), num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=cfg.seed)
    step_model = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None) if env.enabled else model
    if cfg.compile:
        step_model = torch.compile(step_model)
    history, first_epoch = History(), 1
    best_mae, best_state, stale = math.inf, copy.deepcopy(model.state_dict()), 0
    if cfg.resume and state_path is not None and state_path.exists():
        payload = load_checkpoint(state_path)
        if run_config is not None and _recipe(payload["config"]) != _recipe(run_config):
            raise HRLSTMError(f"{state_path}: --resume with different data, model or features; remove --resume to start over")
        saved = payload["training_state"]
        model.load_state_dict(payload["state_dict"])  # the last epoch's weights
        opt.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler"):
            if saved["scheduler"].get("total_steps") != scheduler.total_steps:
                raise HRLSTMError(f"{state_path}: --resume with a different --epochs (or data) under --lr_schedule "
                                  f"{cfg.lr_schedule}, whose schedule spans the run; use the same --epochs")
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
        val_err = predict(model, x_va, u_va, device) - y_va_np
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
                log(f"Early stop: no better validation MAE for {cfg.patience} epochs (best {best_mae:.2f} at epoch {history.best_epoch})")
        if state_path is not None and env.is_main:
            training_state = {
                "optimizer": opt.state_dict(), "shuffle_rng": shuffle.get_state(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "history": history.__dict__, "best_mae": best_mae, "best_model": best_state, "stale": stale,
            }
            save_checkpoint(state_path, model.state_dict(), training_state=training_state, config=run_config or {},
                            normalizer={}, user_ids=[])
    model.load_state_dict(best_state)
    return history


def run(cfg: RunConfig, log=say) -> RunResult:
    """The whole recipe: prepare data, train, test, and write checkpoint, curves and metrics.

    Under torchrun every process trains its share; only rank 0 logs and writes files.
    """
    env = dist.detect()
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
        save_checkpoint(ckpt_path, model.state_dict(), metrics={"best_epoch": history.best_epoch}, **common)

    started = time.perf_counter()
    state_path = out_dir / f"{cfg.model.model}_last.pt"
    history = fit(model, data, cfg.train, device, log, on_improve=save_best, state_path=state_path, env=env,
                  run_config=common["config"])
    train_seconds = time.perf_counter() - started

    metrics, test_pred = test_metrics(model, data, device)
    metrics.update(
        model=cfg.model.model,
        val_mae=min(history.val_mae),
        best_epoch=history.best_epoch,
        epochs_run=len(history.epoch),
        train_seconds=round(train_seconds, 2),
        n_parameters=n_params,
        device=str(device),
        world_size=env.world_size,
        hr_lstm_version=__version__,
        torch_version=str(torch.__version__),
        history=history.__dict__,
        **common,
    )
    metrics_path = out_dir / f"{cfg.model.model}_metrics.json"
    if env.is_main:
        save_checkpoint(ckpt_path, model.state_dict(), metrics=metrics, **common)
        metrics_path.write_text(json.dumps(plain(metrics), indent=1))
        save_training_curves(history, out_dir / f"{cfg.model.model}_training_curves.png", cfg.model.model)
        log(report_line(metrics))
        log(f"Wrote {ckpt_path}, {metrics_path.name} and {cfg.model.model}_training_curves.png")
    dist.teardown(env)
    return RunResult(cfg, data, model, history, metrics, test_pred, ckpt_path, metrics_path)


def save_training_curves(history: History, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    from .plots import training_curves

    fig = training_curves(history, title=title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def test_metrics(model: HRLSTM, data: Prepared, device: torch.device) -> tuple[dict, np.ndarray]:
    """Test metrics next to the mean-heart-rate baseline and, on simulated data, the noise floor."""
    x, y, u = data.part("test")
    pred = predict(model, x, u, device)
    y = y.numpy()
    metrics = compute_metrics(pred, y).as_dict("test_")
    metrics.pop("test_n_workouts")
    metrics.update(n_train=len(data.split.train), n_val=len(data.split.val), n_test=len(data.split.test))
    metrics["baseline_mean_mae"] = float(np.abs(y - data.train_mean_bpm).mean())
    if data.clean_bpm is not None:
        floor = noise_floor_mae(y, data.clean_bpm[data.split.test])
        metrics["noise_floor_mae"] = floor
        metrics["mae_over_floor"] = metrics["test_mae"] / floor if floor > 0 else None
    return metrics, pred


def report_line(m: dict) -> str:
    line = (
        f"Test: MAE {m['test_mae']:.2f} BPM | RMSE {m['test_rmse']:.2f} | R² {m['test_r2']:.3f} | "
        f"median workout MAE {m['test_median_workout_mae']:.2f} | mean-HR baseline MAE {m['baseline_mean_mae']:.2f}"
    )
    if m.get("noise_floor_mae") is not None:
        line += f" | noise floor {m['noise_floor_mae']:.2f} (model {m['mae_over_floor']:.2f}x floor)"
    return line


def main(argv: list[str] | None = None) -> int:
    from .cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
