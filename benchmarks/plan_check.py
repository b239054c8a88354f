"""The planner against the simulator's truth: how often simulated athletes' true heart rate crosses the ceiling
on the plans made for them, and how much faster the plans are than the best even pace under the same ceiling.

    python benchmarks/plan_check.py --quick                        # CPU-sized: trains a small model first
    python benchmarks/plan_check.py --checkpoint CK --athletes 40  # a checkpoint trained on simulated data

The checkpoint must have been trained on simulated data (its athletes' true laws are read from the
data file's sidecar) and carry a calibrated band (for --safe). Without --checkpoint, a model is
trained on the held-out `random` family (the default recipe, fewer steps with --quick) and reused
on the next run. Prints per-course summary and writes the long table with --json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hr_lstm.data.simulate.respond import load_athletes
from hr_lstm.evaluation.plan_check import PlanCheckConfig, check_plans, summary
from hr_lstm.training.config import RunConfig
from hr_lstm.training.run import run
from hr_lstm.training.trained import TrainedModel

QUICK = dict(athletes=8, days=10, users=30, steps=600)
FULL = dict(athletes=30, days=20, users=60, steps=3500)


def trained_checkpoint(users: int, steps: int, device: str) -> Path:
    out = Path("checkpoints") / f"plan_check_random_u{users}_s{steps}"
    path = out / "lstm_embeddings_best.pt"
    if path.exists():
        print(f"Reusing {path}", flush=True)
        return path
    print(f"Training the default recipe on the held-out `random` family, {users} athletes, {steps} steps -> {out}")
    cfg = RunConfig().override(
        {
            "data.sim_users": users,
            "data.sim_variant": "random",
            "train.steps": steps,
            "train.out_dir": str(out),
            "train.device": device,
        }
    )
    run(cfg)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="CPU-sized: {athletes} athletes, {days} days".format(**QUICK)
    )
    parser.add_argument("--checkpoint", type=Path, help="trained on simulated data (default: train one, see above)")
    parser.add_argument("--athletes", type=int, help="simulated athletes to plan for")
    parser.add_argument("--days", type=int, help="days of form each plan is run on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the long table (one row per athlete and course)")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    started = time.perf_counter()
    path = args.checkpoint or trained_checkpoint(size["users"], size["steps"], args.device)
    model = TrainedModel.load(path, args.device)
    data_path = model.payload.get("data_path")
    athletes = load_athletes(data_path)
    cfg = PlanCheckConfig(
        n_athletes=args.athletes or size["athletes"], n_days=args.days or size["days"], seed=args.seed
    )
    print(f"Planning for {cfg.n_athletes} simulated runners of {data_path} on {len(cfg.courses)} courses", flush=True)
    table = check_plans(model, athletes, cfg)
    if args.json:
        table.to_json(args.json, orient="records", indent=1)
    print()
    print(summary(table).round(3).to_string())
    print(
        "\ngain: 1 - plan finish / finish at the best even pace, both keeping the band's upper edge under the ceiling"
        "\non the model (--safe); over_*: share of the time the athlete's TRUE heart rate was above the ceiling, on"
        f"\n{cfg.n_days} days of form each: on the plan, on a plan keeping only the prediction under the ceiling"
        f"\n(plain), at the even pace.\nTotal {time.perf_counter() - started:.0f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
