"""The simulator's ground truth, kept beside the data in two sidecars: the noise-free heart rate
and artefact kind of every workout (`<name>.truth.npz`) and the athletes' true parameters
(`<name>.athletes.csv`). `sidecar_paths` names them, `load_truth` reads them back as a `SimTruth`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError


@dataclass
class SimTruth:
    ids: np.ndarray  # int64 (n,), workout ids in file order
    user_ids: np.ndarray  # int64 (n,)
    heart_rate_clean_bpm: np.ndarray  # float32 (n, seq_len): before sensor noise and artefacts
    artefact_kind: np.ndarray  # int8 (n,), index into ARTEFACT_KINDS (sensors.py)
    athletes: pd.DataFrame  # one row per athlete, true parameters


def sidecar_paths(data_path) -> tuple[Path, Path]:
    """(truth .npz, athletes .csv) next to the data: /tmp/s.json.gz -> /tmp/s.truth.npz, /tmp/s.athletes.csv."""
    p = Path(data_path)
    name = p.name
    for suffix in (".gz", ".json"):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    return p.with_name(name + ".truth.npz"), p.with_name(name + ".athletes.csv")


def load_truth(data_path) -> SimTruth | None:
    """The simulator's ground truth for a data file, or None when it has no sidecars."""
    npz, csv = sidecar_paths(data_path)
    if not (npz.exists() and csv.exists()):
        return None
    try:
        with np.load(npz) as z:
            arrays = {k: z[k] for k in ("id", "userId", "heart_rate_clean_bpm", "artefact_kind")}
        athletes = pd.read_csv(csv)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{npz}: unreadable simulator truth sidecar ({exc})") from None
    return SimTruth(arrays["id"], arrays["userId"], arrays["heart_rate_clean_bpm"], arrays["artefact_kind"], athletes)
