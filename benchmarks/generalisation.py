"""Leave-one-family-out: the default recipe trained on one simulator variant, tested on others.

    python benchmarks/generalisation.py --quick                   # CPU-sized: 2 variants, small, a few minutes
    python benchmarks/generalisation.py --device cuda             # every variant, 300 athletes, the default budget
    python benchmarks/generalisation.py --train default,random --test default,random --users 60

Prints one table: rows = (model, train variant), columns = test variant, cells = test MAE over
the noise floor on the test variant's latest workouts. Recipe and input choices are made on the
SELECTION_VARIANTS only (hr_lstm/data/simulate/variants.py); the HELD_OUT_VARIANTS are what the choices are reported on
(docs/benchmarks.md, "Generalisation: held-out simulator families").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from hr_lstm.data.simulate.variants import HELD_OUT_VARIANTS, variant_names
from hr_lstm.evaluation.generalisation import GeneralisationConfig, ratio_matrix, run_generalisation

QUICK = dict(variants="default,random", users=30, steps=300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="CPU-sized: {variants}, {users} athletes, {steps} steps".format(**QUICK)
    )
    parser.add_argument("--test", help=f"test variants, comma-separated (default: all: {', '.join(variant_names())})")
    parser.add_argument("--train", help="train variants (default: the test variants)")
    parser.add_argument("--models", default="lstm_embeddings", help="comma-separated models to compare")
    parser.add_argument("--users", type=int, help="simulated athletes per variant (default 300)")
    parser.add_argument("--steps", type=int, help="optimiser steps per training (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads per training (0: all)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help='another recipe change, JSON value, e.g. --set \'features.inputs=["speed","altitude"]\'',
    )
    parser.add_argument("--json", type=Path, help="also write the long table here")
    args = parser.parse_args()

    quick = QUICK if args.quick else {}
    split = lambda text: tuple(x.strip() for x in text.split(",") if x.strip())  # noqa: E731
    variants = split(args.test or quick.get("variants") or ",".join(variant_names()))
    changes = {"train.device": args.device, "train.threads": args.threads}
    steps = args.steps or quick.get("steps")
    changes |= {"train.steps": steps} if steps else {}
    for item in args.set:
        key, _, value = item.partition("=")
        changes[key] = json.loads(value)
    cfg = GeneralisationConfig(
        variants=variants,
        train_variants=split(args.train) if args.train else (),
        models=split(args.models),
        users=args.users or quick.get("users") or 300,
        seed=args.seed,
        changes=changes,
    )
    table = run_generalisation(cfg)
    pd.set_option("display.width", 250)
    matrix = ratio_matrix(table)
    matrix.columns = [f"{c}{' (held out)' if c in HELD_OUT_VARIANTS else ''}" for c in matrix.columns]
    print(f"\nTest MAE / noise floor ({cfg.users} athletes per variant, seed {cfg.seed}, changes {changes}):")
    print(matrix.round(2).to_string())
    print("\nDiagonal (trained and tested on the same family):")
    same = table[table["train"] == table["test"]]
    print(
        same[["model", "train", "test_mae", "noise_floor_mae", "mae_over_floor", "train_seconds"]]
        .round(2)
        .to_string(index=False)
    )
    if args.json:
        args.json.write_text(table.to_json(orient="records", indent=1))


if __name__ == "__main__":
    main()
