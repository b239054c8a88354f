"""Where things live: one project root, and the default data, checkpoint and report folders.

Cookiecutter-Data-Science style: the package is installed editable, so the
project root is the folder above this package; notebooks and the command line
resolve every default path from here. `HR_LSTM_DATA_DIR` moves the data folder
(e.g. to a bigger disk).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _project_root() -> Path:
    here = Path(__file__).resolve().parents[1]
    # An editable install points here; a plain install lands in site-packages,
    # where the working directory is the better guess.
    return here if (here / "pyproject.toml").exists() else Path.cwd()


PROJ_ROOT = _project_root()
DATA_DIR = Path(os.environ.get("HR_LSTM_DATA_DIR", PROJ_ROOT / "data"))
CHECKPOINT_DIR = PROJ_ROOT / "checkpoints"
REPORTS_DIR = PROJ_ROOT / "reports"
NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
EXAMPLES_DIR = PROJ_ROOT / "examples"  # real recordings that ship with the project (examples/*/README.md)
EXAMPLE_RUNNER = EXAMPLES_DIR / "runner_a"

# A few hundred athletes (282 keep 10+ run/bike workouts): enough to learn user embeddings that
# generalise, and the default recipe still trains in about 10 minutes on a 2-core CPU. The
# notebooks default to 60 athletes to keep the headless report quick (their `sim_users`).
DEFAULT_SIM_USERS = 300
DEFAULT_SIM_SEED = 0


def default_sim_data_path(n_users: int = DEFAULT_SIM_USERS, seed: int = DEFAULT_SIM_SEED) -> Path:
    return DATA_DIR / "simulated" / f"sim_users{n_users}_seed{seed}.json.gz"


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success rename it over `final`, on failure
    remove it. Readers never see a half-written file, and a crash leaves the old one intact."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would surprise whoever shares the folder
        os.replace(tmp, final)
    finally:
        Path(tmp).unlink(missing_ok=True)
