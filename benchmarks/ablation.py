"""What each input and each model choice adds, one row each, against the default recipe.

    python benchmarks/ablation.py --data /tmp/s.json.gz              # full table, default recipe
    python benchmarks/ablation.py --rows core --steps 600 --cold-start

Every row trains the default recipe with one change on the same data, split
and seed, and prints test MAE / RMSE / R², the ratio to the noise floor (on
simulated data) and the MAE difference to the default with a 95% bootstrap
interval over athletes. `--cold-start` adds the original project's model and the default
on athletes held out entirely (`--split user`), as a separate table.
"""

from __future__ import annotations

import argparse

import pandas as pd

from hr_lstm.evaluation.ablation import ROW_SETS, run_ablation, run_cold_start
from hr_lstm.training.config import RunConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="FitRec-format file (default: the simulated set)")
    parser.add_argument("--sim_users", type=int, help="athletes in the default simulated set")
    parser.add_argument("--rows", choices=ROW_SETS, default="full")
    parser.add_argument(
        "--only", help="rows whose name contains any of these comma-separated words (the default row always runs)"
    )
    parser.add_argument("--steps", type=int, help="optimiser steps per row (default: the recipe's budget)")
    parser.add_argument("--epochs", type=int, help="passes over the training split per row, instead of --steps")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cold-start", action="store_true", help="also train both models on --split user")
    args = parser.parse_args()

    changes = {"data.path": args.data, "train.device": args.device, "train.seed": args.seed, "split.seed": args.seed}
    changes |= {"data.sim_users": args.sim_users} if args.sim_users else {}
    changes |= {"train.steps": args.steps} if args.steps else {}
    changes |= {"train.epochs": args.epochs} if args.epochs else {}
    base = RunConfig().override(changes).validate()
    rows = ROW_SETS[args.rows]
    first = next(iter(rows))
    wanted = [w for w in (args.only or "").split(",") if w]
    rows = {k: v for k, v in rows.items() if k == first or not wanted or any(w in k for w in wanted)}
    pd.set_option("display.width", 200)
    print(run_ablation(base, rows).round(2).to_string())
    if args.cold_start:
        table, difference = run_cold_start(base)
        print("\nCold start (athletes never seen in training):")
        print(table.round(2).to_string())


if __name__ == "__main__":
    main()
