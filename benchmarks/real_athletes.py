"""Real athletes: personalise on each person's earlier 80% of workouts, predict their latest 20%.

    python benchmarks/real_athletes.py                          # every real athlete found (below), one row each
    python benchmarks/real_athletes.py FOLDER_A FOLDER_B ...    # these athletes (a folder or export each)
    python benchmarks/real_athletes.py FOLDER --detail          # one athlete's full table: every rung, baselines

Without folders it runs every athlete under `$HR_LSTM_REAL_ATHLETES` (default: a `shared/real_workouts`
folder beside the project, where the team keeps real histories): each subfolder holding at least
MIN_HISTORY recordings is one person. Where there is none (a user's clone), the example runner
(`examples/runner_a`).

The default table has one row per athlete and two summary rows (mean, worst): the automatic
personalisation's pooled MAE on the latest 20% against the athlete's own-mean baseline; after minute 5
without and with the warm start and the persistence baseline (the measured last minute before minute 5,
held), each against the own mean after minute 5; the 80% band's coverage, personalised, generic (the
band of athletes the model knows), and for an athlete the model does not know: the checkpoint's own
(simulated athletes with the mean embedding) and one fitted on every other athlete of the run, this one left
out (as `hr-lstm calibrate --strangers` fits it); and the seconds personalising took. `--detail` prints every rung, the physiological baseline and a model
trained on the athlete alone (reporting.athlete). Nothing from the latest 20% fits anything.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from hr_lstm.data.recordings import collect_workout_files
from hr_lstm.inference.finetune import RUNG_CHOICES, PersonalizeConfig
from hr_lstm.inference.strangers import PRIOR_ATHLETES
from hr_lstm.models.bundled import BUNDLED_CHECKPOINT
from hr_lstm.models.intervals import fit_intervals_strangers
from hr_lstm.paths import CHECKPOINT_DIR, EXAMPLE_RUNNER, PROJ_ROOT
from hr_lstm.reporting.athlete import athlete_files, athlete_table, summary_row, summary_table
from hr_lstm.training.trained import TrainedModel

MIN_HISTORY = 20  # recordings in a folder for it to count as one athlete's history


def default_athletes() -> list[Path]:
    """Every history under $HR_LSTM_REAL_ATHLETES (or ../shared/real_workouts), else the example runner."""
    root = Path(os.environ.get("HR_LSTM_REAL_ATHLETES", PROJ_ROOT.parent / "shared" / "real_workouts"))
    found = (
        [d for d in sorted(root.iterdir()) if d.is_dir() and len(collect_workout_files([d]).files) >= MIN_HISTORY]
        if root.is_dir()
        else []
    )
    return found or [EXAMPLE_RUNNER]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, help="one folder of recordings per athlete (default: above)")
    trained = CHECKPOINT_DIR / "lstm_embeddings_best.pt"
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=trained if trained.is_file() else BUNDLED_CHECKPOINT,
        help="an lstm_embeddings checkpoint (default: checkpoints/lstm_embeddings_best.pt from `hr-lstm train`, "
        "else the bundled default model)",
    )
    parser.add_argument("--sport", default=None, help="the athletes' sport, when the files do not say it")
    parser.add_argument("--detail", action="store_true", help="every rung and baseline, one table per athlete")
    parser.add_argument("--rungs", default="embedding,head,full,blend,auto", help=f"with --detail: {RUNG_CHOICES}")
    parser.add_argument("--athlete-epochs", type=int, default=40, help="with --detail: athlete-alone model (0: skip)")
    parser.add_argument("--seed", type=int, default=0, help="personalisation seed (default 0)")
    parser.add_argument(
        "--max-workouts",
        type=int,
        default=PersonalizeConfig.max_train_workouts,
        help="personalise on at most the latest N",
    )
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        raise SystemExit(f"{args.checkpoint}: no such checkpoint; pass --checkpoint")
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    folders = args.folders or default_athletes()
    rows, results = [], {}
    for folder in folders:
        print(f"{folder}:", flush=True)
        rungs = [r for r in args.rungs.split(",") if r] if args.detail else ["auto"]
        result = athlete_table(
            athlete_files(folder),
            args.checkpoint,
            args.sport,
            rungs,
            args.athlete_epochs if args.detail else 0,
            seed=args.seed,
            max_workouts=args.max_workouts,
        )
        if args.detail:
            print(result.table.round(2).to_string(), flush=True)
        results[folder.name] = result
        if "auto" in rungs:
            rows.append(summary_row(folder.name, result))
    unknown = TrainedModel.load(args.checkpoint).interval_unknown
    for row in rows:
        # The band for a stranger, as `hr-lstm calibrate --strangers` fits it, on every other athlete here: this
        # athlete is left out of the fit and scored (leave-one-athlete-out). And the checkpoint's own (simulated).
        others = {n: r for n, r in results.items() if n != row["athlete"] and r.generic_all is not None}
        fit = None
        if others:
            pred, true, t = (np.concatenate(p) for p in zip(*(r.generic_all for r in others.values())))
            athlete = np.concatenate([np.full(len(r.generic_all[0]), n) for n, r in others.items()])
            fit = fit_intervals_strangers(pred, true, t, athlete, prior=unknown, prior_athletes=PRIOR_ATHLETES)
        row["band unknown (sim)"] = results[row["athlete"]].stranger_coverage(unknown)
        row["band unknown (others)"] = results[row["athlete"]].stranger_coverage(fit)
    if rows:
        print(f"\nPer athlete (checkpoint {args.checkpoint}, seed {args.seed}):")
        print(summary_table(rows).round(3).to_string(), flush=True)


if __name__ == "__main__":
    main()
