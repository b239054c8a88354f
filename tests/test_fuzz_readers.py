"""Fuzzed readers (hypothesis): mutated files give the project's one-line errors, never a traceback or a hang.

Every reader (FIT, GPX, gzipped GPX, TCX, both CSV stream shapes, FitRec lines) and the checkpoint loader,
each mutation kind of `benchmarks/fuzz.py` (truncation, bit flips, dropped or repeated bytes and elements,
absurd numbers, other encodings, empty and huge values), a few hundred cases in all: a CI-sized run. The
long run is `python benchmarks/fuzz.py --cases 20000` (docs/reliability.md).
"""

from __future__ import annotations

import importlib.util
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("fuzz", ROOT / "benchmarks" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

WORKDIR = Path(tempfile.mkdtemp(prefix="hr_lstm-fuzz-"))
SEEDS = fuzz.seeds(WORKDIR)
CASE_TIMEOUT_S = 20.0


def _hang(signum, frame):
    raise AssertionError(f"a case ran past {CASE_TIMEOUT_S:g} s (a hang)")


@pytest.mark.parametrize("name", sorted(SEEDS))
@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,  # the same cases on every run: CI stays reproducible; benchmarks/fuzz.py explores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(kind=st.sampled_from(fuzz.MUTATIONS), seed=st.integers(0, 2**32 - 1))
def test_a_mutated_file_is_read_or_refused_in_one_line(name, kind, seed):
    data = fuzz.mutate(SEEDS[name], kind, np.random.default_rng(seed))
    old = signal.signal(signal.SIGALRM, _hang)
    signal.setitimer(signal.ITIMER_REAL, CASE_TIMEOUT_S)
    try:
        fuzz.check(name, data, WORKDIR)  # raises on anything but HRLSTMError (one line) or a clean read
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_the_seeds_themselves_read_cleanly():
    """The unmutated files are good ones: a mutation, not the seed, is what a failure points at."""
    for name, data in SEEDS.items():
        fuzz.check(name, data, WORKDIR)
