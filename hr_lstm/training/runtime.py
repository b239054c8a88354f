"""Where and how a run executes: the device, backend switches, CPU threads and the allocator."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import torch

from ..errors import HRLSTMError
from . import distributed as dist
from .config import TrainConfig


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
    """cuDNN on unless --no-cudnn (the original project's GTX 1060 workaround costs 8-80x); TF32 matmuls on
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
