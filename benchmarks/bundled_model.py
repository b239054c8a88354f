"""Rebuild the bundled default model from its recorded recipe and compare the metrics.

    python benchmarks/bundled_model.py            # about 6 minutes on 2 cores

Trains the recipe (`hr_lstm.models.bundled.RECIPE_COMMAND`) into a temporary folder and prints the new test
metrics next to the bundled file's. On the machine type it was built on they agree within 0.1 BPM (training is
deterministic for a seed and a thread count); another CPU or a GPU may differ by more.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

from hr_lstm.cli import main as cli_main
from hr_lstm.models.bundled import BUNDLED_CHECKPOINT, RECIPE_COMMAND
from hr_lstm.training.trained import TrainedModel

FIGURES = ("test_mae", "mae_over_floor", "test_band_coverage", "val_mae")


def main() -> None:
    bundled = TrainedModel.load(BUNDLED_CHECKPOINT).metrics
    with tempfile.TemporaryDirectory() as tmp:
        argv = shlex.split(RECIPE_COMMAND)[1:]
        argv[argv.index("--out") + 1] = tmp
        assert cli_main(argv) == 0
        rebuilt = TrainedModel.load(Path(tmp) / "lstm_embeddings_best.pt").metrics
    print(f"{'figure':22s} {'bundled':>10s} {'rebuilt':>10s} {'difference':>10s}")
    for name in FIGURES:
        a, b = bundled.get(name), rebuilt.get(name)
        print(f"{name:22s} {a:10.4f} {b:10.4f} {b - a:+10.4f}")
    diff = abs(rebuilt["test_mae"] - bundled["test_mae"])
    print(f"test MAE within 0.1 BPM: {'yes' if diff <= 0.1 else 'no'} ({diff:.3f})")


if __name__ == "__main__":
    main()
