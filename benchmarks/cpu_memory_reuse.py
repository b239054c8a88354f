"""CPU training steps with glibc's default allocator settings against `hr_lstm.training.runtime.keep_freed_memory`.

    python benchmarks/cpu_memory_reuse.py                  # the default model, batch 32
    python benchmarks/cpu_memory_reuse.py --batch_size 64 --hidden_size 128

Each setting runs in its own process (the allocator setting is process-wide and
cannot be undone), alternating, best of `--repeats`: it prints milliseconds per
training step (the default model's shape: 500 steps, 17 inputs, user embedding),
system-time milliseconds and minor page faults per step, and the ratio. Without
glibc (macOS, Windows, musl) the setting does nothing and the script says so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

STEP = """
import json, resource, sys, time
import torch
from hr_lstm.training.config import TrainConfig
from hr_lstm.models.lstm import ModelConfig, build_model
from hr_lstm.training.loop import make_optimizer, train_epoch
from hr_lstm.training.runtime import keep_freed_memory
args = json.loads(sys.argv[1])
applied = keep_freed_memory() if args["keep"] else False
torch.manual_seed(0)
cfg = ModelConfig(n_inputs=17, n_users=300, hidden_size=args["hidden_size"])
model, train = build_model(cfg), TrainConfig(batch_size=args["batch_size"])
opt = make_optimizer(model, train, torch.device("cpu"))
n = args["batch_size"] * max(args["steps"], 3)  # the warm-up takes 3 batches
x, y = torch.randn(n, 500, 17), 140 + 20 * torch.randn(n, 500)
users = torch.randint(1, 301, (n,))
train_epoch(model, opt, x, y, users, torch.arange(args["batch_size"] * 3), train)  # warm-up: the heap grows
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
train_epoch(model, opt, x, y, users, torch.arange(args["batch_size"] * args["steps"]), train)
r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
s = args["steps"]
print(json.dumps({"applied": applied, "ms": (t1 - t0) / s * 1e3, "sys_ms": (r1.ru_stime - r0.ru_stime) / s * 1e3,
                  "faults": (r1.ru_minflt - r0.ru_minflt) / s}))
"""


def measure(keep: bool, args) -> dict:
    spec = json.dumps(
        {"keep": keep, "batch_size": args.batch_size, "hidden_size": args.hidden_size, "steps": args.steps}
    )
    out = subprocess.run([sys.executable, "-c", STEP, spec], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--hidden_size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    best: dict[bool, dict] = {}
    for _ in range(args.repeats):
        for keep in (False, True):
            r = measure(keep, args)
            if keep and not r["applied"]:
                raise SystemExit("no glibc here: keep_freed_memory does nothing, so there is nothing to compare")
            if keep not in best or r["ms"] < best[keep]["ms"]:
                best[keep] = r
    for keep, label in ((False, "glibc defaults"), (True, "keep_freed_memory")):
        r = best[keep]
        print(
            f"{label:<18} {r['ms']:7.1f} ms/step  sys {r['sys_ms']:6.1f} ms/step  {r['faults']:8.0f} page faults/step"
        )
    print(
        f"speed-up: {best[False]['ms'] / best[True]['ms']:.2f}x  (batch {args.batch_size}, hidden {args.hidden_size})"
    )


if __name__ == "__main__":
    main()
