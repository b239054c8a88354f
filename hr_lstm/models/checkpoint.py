"""Checkpoints that carry their own recipe (nanoGPT-style) and load with weights_only=True.

A checkpoint is a plain dict: the state_dict, every config as a dict, the
normalisation statistics, the user index, the metrics, the data fingerprint
and the versions. No pickled modules, so `torch.load(path, weights_only=True)`
reads it, and a checkpoint from anyone else is refused with one clear line.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import warnings
import zipfile
from dataclasses import fields
from pathlib import Path

import torch

from .. import __version__
from ..errors import CheckpointError, HRLSTMError
from ..paths import write_bytes_atomic
from .lstm import ModelConfig, build_model

FORMAT = "hr_lstm.checkpoint/1"
DAMAGED = "not a readable PyTorch checkpoint: truncated or damaged checkpoint (re-train or re-download)"


def plain(obj):
    """Dataclass dicts and numpy scalars -> JSON-safe Python values (what weights_only accepts); NaN and infinity
    become None, which JSON can hold (a metrics file with `NaN` in it is not valid JSON)."""
    return _finite(json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o))))


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


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


ZIP_MAGIC, PICKLE_MAGIC = b"PK\x03\x04", b"\x80"  # torch.save's zip archive; the legacy format starts with a pickle


def _what_it_is(head: bytes) -> str:
    """A short guess at a file that is no PyTorch checkpoint, from its first bytes."""
    text = head.lstrip().lower()
    if text.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer (run `git lfs pull` to fetch the file itself)"
    if text.startswith((b"<!doctype html", b"<html")):
        return "an HTML page (a download that returned an error page?)"
    if text[:1] in (b"{", b"["):
        return "JSON or text"
    if head[8:12] == b".FIT":
        return "a FIT recording"
    if text.startswith(b"<?xml") or text.startswith(b"<"):
        return "an XML file"
    return "text" if all(32 <= c < 127 or c in b"\r\n\t" for c in head[:256]) else "of unknown content"


def load_checkpoint(path: str | Path, resume_file: bool = False) -> dict:
    """A checkpoint's payload, checked; `resume_file`: `train`'s own --resume state is what is wanted."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"{path}: " + ("is a directory, expected a .pt file" if path.is_dir() else "no such checkpoint")
        )
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not head.startswith((ZIP_MAGIC, PICKLE_MAGIC)):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint: the file is {_what_it_is(head)}")
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
    except (zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError, TypeError):
        raise CheckpointError(f"{path}: {DAMAGED}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an hr_lstm checkpoint (no '{FORMAT}' marker)")
    if not resume_file and payload.get("training_state") is not None and not payload.get("normalizer"):
        raise CheckpointError(
            f"{path}: the resume file `hr-lstm train` keeps for --resume, not a model; use the "
            f"{path.name.replace('_last.pt', '_best.pt')} beside it"
        )
    missing = [k for k in ("state_dict", "config", "normalizer", "user_ids") if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: hr_lstm checkpoint is missing {', '.join(missing)}")
    model = payload["config"].get("model") if isinstance(payload["config"], dict) else None
    if not isinstance(model, dict):
        raise CheckpointError(f"{path}: hr_lstm checkpoint has no model settings (config.model)")
    unknown = sorted(set(model) - {f.name for f in fields(ModelConfig)})
    if unknown:
        raise CheckpointError(
            f"{path}: model settings this version does not know ({', '.join(unknown)}); written by a newer hr_lstm?"
        )
    return payload


def restore_model(payload: dict, path: str | Path | None = None):
    """Rebuild the model a checkpoint describes and load its weights (on the CPU); `path` names it in errors."""
    where = f"{path}: " if path is not None else ""
    try:
        model = build_model(ModelConfig(**payload["config"]["model"]))
    except (ValueError, TypeError, HRLSTMError) as exc:  # an unknown model name, a bad size
        raise CheckpointError(f"{where}model settings not usable ({exc})") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{where}weights do not fit the model the checkpoint describes ({str(exc).splitlines()[0]})"
        ) from None
    if not all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point()):
        raise CheckpointError(f"{where}the checkpoint's weights hold NaN or infinite values (a diverged training?)")
    return model.eval()
