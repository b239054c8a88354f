"""Real athletes: personalise on a person's earlier 80% of workouts, predict the latest 20%.

    python benchmarks/real_athletes.py                                  # the example runner (examples/runner_a)
    python benchmarks/real_athletes.py ~/my_runs --sport run --checkpoint checkpoints/lstm_embeddings_best.pt
    python benchmarks/real_athletes.py FOLDER_A FOLDER_B ...            # one table per athlete

For each folder of one person's FIT / GPX / TCX files (sorted by start time; files without heart rate
skipped), every row predicts the same latest 20% of workouts and is scored by pooled MAE, on all minutes
and on the minutes after k = 2 and 5 without and with a warm start from the first k measured minutes
(plain, and calibrated: a personalised row with its checkpoint's own calibration, as `hr-lstm predict`).
Rows: the athlete's own mean heart rate over the earlier 80% (a constant), the per-athlete physiological
baseline fitted on the earlier 80%, the generic model (mean embedding), each personalisation rung and the
automatic choice (fitted on the earlier 80% only), and a small LSTM trained on that athlete alone.
Nothing from the latest 20% is used to fit anything.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from hr_lstm.inference.finetune import RUNG_CHOICES
from hr_lstm.paths import CHECKPOINT_DIR, EXAMPLE_RUNNER
from hr_lstm.reporting.athlete import athlete_files, athlete_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "folders",
        nargs="*",
        type=Path,
        default=[EXAMPLE_RUNNER],
        help="one folder of recordings per athlete (default: examples/runner_a)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=CHECKPOINT_DIR / "lstm_embeddings_best.pt",
        help="an lstm_embeddings checkpoint (default: checkpoints/lstm_embeddings_best.pt, from `hr-lstm train`)",
    )
    parser.add_argument("--sport", default=None, help="the athletes' sport, when the files do not say it")
    parser.add_argument("--rungs", default="embedding,head,full,blend,auto", help=f"from {', '.join(RUNG_CHOICES)}")
    parser.add_argument("--athlete-epochs", type=int, default=40, help="epochs of the athlete-alone model (0: skip)")
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        raise SystemExit(f"{args.checkpoint}: no such checkpoint; train one first (hr-lstm train) or pass --checkpoint")
    pd.set_option("display.width", 200)
    for folder in args.folders:
        rungs = [r for r in args.rungs.split(",") if r]
        print(f"{folder}:", flush=True)
        result = athlete_table(athlete_files(folder), args.checkpoint, args.sport, rungs, args.athlete_epochs)
        print(result.table.round(2).to_string(), flush=True)


if __name__ == "__main__":
    main()
