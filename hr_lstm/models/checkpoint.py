"""Checkpoints that carry their own recipe (nanoGPT-style) and load with weights_only=True.

A checkpoint is a plain dict: the state_dict, every config as a dict, the
normalisation statistics, the user index, the metrics, the data fingerprint
and the versions. No pickled modules, so `torch.load(path, weights_only=True)`
reads it, and a checkpoint from anyone else is refused with one clear line.
"""

from __future__ import annotations

import io
import json
import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from .. import __version__
from ..errors import CheckpointError
from ..paths import write_bytes_atomic
from .lstm import ModelConfig, build_model

FORMAT = "hr_lstm.checkpoint/1"
DAMAGED = "not a readable PyTorch checkpoint: truncated or damaged checkpoint (re-train or re-download)"


def plain(obj):
    """Dataclass dicts and numpy scalars -> JSON-safe Python values (what weights_only accepts)."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def atomic_torch_save(payload: dict, path: Path) -> Path:
    """A kill mid-save leaves the previous checkpoint intact; a full disk is one line naming the file.

    Serialised in memory first: torch's own file writer reports a full disk as
    `basic_ios::clear: iostream error`, a plain write reports ENOSPC."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return write_bytes_atomic(path, buffer.getbuffer())


def save_checkpoint(path: Path, state_dict: dict, training_state: dict | None = None, **fields) -> Path:
    """The model's weights plus `fields` (configs, metrics, ...) as plain values.

    `training_state` (optimizer, RNG, history: tensors allowed) goes only into
    the per-epoch resume file.
    """
    payload = {
        "format": FORMAT,
        "hr_lstm_version": __version__,
        "torch_version": str(torch.__version__),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        **{k: plain(v) for k, v in fields.items()},
    }
    if training_state is not None:
        payload["training_state"] = training_state
    return atomic_torch_save(payload, path)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"{path}: " + ("is a directory, expected a .pt file" if path.is_dir() else "no such checkpoint")
        )
    try:
        with warnings.catch_warnings():  # torch warns before refusing a pickle: our one line says it all
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" in str(exc).lower():
            raise CheckpointError(
                f"{path}: not an hr_lstm checkpoint: it holds pickled Python objects, which are not loaded "
                "for safety (not a readable PyTorch checkpoint with weights_only=True)"
            ) from None
        raise CheckpointError(f"{path}: {DAMAGED}") from None
    except (zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError):
        raise CheckpointError(f"{path}: {DAMAGED}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an hr_lstm checkpoint (no '{FORMAT}' marker)")
    missing = [k for k in ("state_dict", "config", "normalizer", "user_ids") if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: hr_lstm checkpoint is missing {', '.join(missing)}")
    return payload


def restore_model(payload: dict):
    """Rebuild the model a checkpoint describes and load its weights (on the CPU)."""
    model = build_model(ModelConfig(**payload["config"]["model"]))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"weights do not fit the model the checkpoint describes ({str(exc).splitlines()[0]})"
        ) from None
    return model.eval()
