"""Simulated new athletes through the real-athlete path: personalise on each one's earlier 80%, predict the latest 20%.

    python benchmarks/simulated_athletes.py --checkpoint CK            # 10 `random` + 6 default-family athletes
    python benchmarks/simulated_athletes.py --checkpoint CK --quick    # 1 + 1 athletes, a smoke test

`benchmarks/real_athletes.py` for athletes whose truth is known and whom the checkpoint never saw
(other seeds; the `random` family is one no recipe was chosen on). Each athlete's workouts go into a
file of their own and through `reporting.athlete.athlete_table`, as a folder of a real person's
recordings does. Prints each athlete's MAE per row, then per row over the athletes: the mean MAE, the
mean ratio to the athlete's own mean heart rate, the same two after minute 5 with the calibrated warm
start (the ratio against the own mean on the same minutes, without a warm start), and the 80% band's
coverage pooled over points.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from hr_lstm.data.fitrec import iter_records
from hr_lstm.data.recordings import write_records
from hr_lstm.data.simulate import SimConfig, simulate
from hr_lstm.inference.finetune import RUNG_CHOICES
from hr_lstm.models.intervals import coverage, coverage_interval
from hr_lstm.paths import CHECKPOINT_DIR
from hr_lstm.reporting.athlete import OWN_MEAN, athlete_table, curves

# (family, athletes, seed): the seeds differ from every training set's (0, 1, 2), so no athlete was seen.
GROUPS = (("random", 10, 11), ("default", 6, 12))


def row_name(row: str) -> str:
    """ "personalised: auto (chose X)" differs by athlete: one row for auto, whatever it chose."""
    return row.split(" (chose")[0]


def pooled(bands: list[tuple]) -> tuple[np.ndarray, ...]:
    """(measured, low, high) of several athletes' workouts, stacked into one set of workouts."""
    return tuple(np.concatenate(part) for part in zip(*bands))


def athlete_files(variant: str, users: int, seed: int, out_dir: Path) -> list[Path]:
    """`users` simulated athletes of `variant`, 25-40 workouts each, one FitRec file per athlete."""
    all_athletes = out_dir / f"{variant}_seed{seed}.json.gz"
    simulate(SimConfig(n_users=users, seed=seed, min_workouts=25, max_workouts=40, variant=variant), all_athletes)
    by_user: dict[int, list] = {}
    for _, _, record in iter_records(all_athletes):
        by_user.setdefault(int(record["userId"]), []).append(record)
    return [write_records(records, out_dir / f"{variant}_{user}.json.gz") for user, records in by_user.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=CHECKPOINT_DIR / "lstm_embeddings_best.pt",
        help="an lstm_embeddings checkpoint (default: checkpoints/lstm_embeddings_best.pt, from `hr-lstm train`)",
    )
    parser.add_argument("--rungs", default="embedding,head,full,blend,auto", help=f"from {', '.join(RUNG_CHOICES)}")
    parser.add_argument("--quick", action="store_true", help="one athlete of each family")
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        raise SystemExit(f"{args.checkpoint}: no such checkpoint; train one first (hr-lstm train) or pass --checkpoint")
    rungs = [r for r in args.rungs.split(",") if r]
    pd.set_option("display.width", 200)
    maes, warm, own_after, banded = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant, users, seed in GROUPS:
            for path in athlete_files(variant, 1 if args.quick else users, seed, Path(tmp)):
                name = path.name.removesuffix(".json.gz")
                print(f"{name}:", flush=True)
                result = athlete_table([path], args.checkpoint, rungs=rungs, athlete_epochs=0)
                maes[name] = result.table["MAE"].rename(index=row_name)
                warm[name] = result.table["after 5, calibrated"].rename(index=row_name)
                own_after[name] = result.table["after 5 min"].rename(index=row_name)[OWN_MEAN]
                if result.chosen_rung:
                    print(f"  auto chose {result.chosen_rung}", flush=True)
                true, _ = curves(result.latest)
                for row, (low, high) in result.bands.items():  # every athlete's latest workouts, pooled
                    banded.setdefault(row_name(row), []).append((true, low, high))
    per_athlete = pd.DataFrame(maes)
    print("\nMAE on each athlete's latest 20% (BPM):")
    print(per_athlete.round(2).to_string())
    own = per_athlete.loc[OWN_MEAN]
    warm_started = pd.DataFrame(warm)
    summary = pd.DataFrame(
        {
            "mean MAE": per_athlete.mean(axis=1),
            "mean x own mean": (per_athlete / own).mean(axis=1),
            "after 5 min, warm start": warm_started.mean(axis=1),
            "x own mean after 5": (warm_started / pd.Series(own_after)).mean(axis=1),
            "80% band coverage (pooled)": pd.Series({row: coverage(*pooled(b)) for row, b in banded.items()}),
        }
    ).reindex(per_athlete.index)
    # Resampling whole workouts: a workout's points share its day's level.
    ranges = {row: coverage_interval(*pooled(b)) for row, b in banded.items()}
    summary["coverage 90% CI"] = pd.Series({row: f"{low:.1%}-{high:.1%}" for row, (low, high) in ranges.items()})
    print(f"\nOver {per_athlete.shape[1]} athletes:")
    print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
