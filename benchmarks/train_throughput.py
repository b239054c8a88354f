"""Training throughput: hr_lstm's own training step against a bare nn.LSTM + Adam loop.

    python benchmarks/train_throughput.py --device cpu
    python benchmarks/train_throughput.py --device cuda        # adds the cuDNN-off column (the original project's)

For each configuration it times (a) `hr_lstm.training.loop.train_epoch`, the step
`hr-lstm train` runs (model with output scaling, gradient clipping, loss
accumulation on the device), and (b) the leanest loop PyTorch allows on the
same shapes (nn.LSTM -> Linear, MSE, Adam, data already in memory), and on a
GPU (c) loop (b) with cuDNN disabled, as the original project's train.py did. It prints
sequences/s, seconds per epoch of 6,368 workouts (the original project's training split)
and the ratio (a)/(b). Random data of the original project's shape: 500 steps, 3 inputs.
(a) and (b) alternate, best of `--repeats`, so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass

import torch
from torch import nn

from hr_lstm.models.lstm import ModelConfig, build_model
from hr_lstm.training.config import TrainConfig
from hr_lstm.training.loop import make_optimizer, train_epoch

SEQ_LEN, N_INPUTS, EPOCH_WORKOUTS = 500, 3, 6_368


@dataclass
class Case:
    name: str
    hidden: int
    layers: int
    batch: int
    embedding_dim: int = 0
    amp: str = "off"


CASES = [
    Case("64x2 b32 (original default)", 64, 2, 32),
    Case("256x4 b64", 256, 4, 64),
    Case("128x3 b32 + 32-d user embedding", 128, 3, 32, embedding_dim=32),
    Case("64x2 b1024 (large batch)", 64, 2, 1024),
]
GPU_CASES = [Case("256x4 b512 bf16 (full FitRec recipe)", 256, 4, 512, amp="bf16")]


class BareLSTM(nn.Module):
    def __init__(self, case: Case, n_users: int):
        super().__init__()
        self.emb = nn.Embedding(n_users, case.embedding_dim) if case.embedding_dim else None
        self.lstm = nn.LSTM(N_INPUTS + case.embedding_dim, case.hidden, case.layers, batch_first=True)
        self.head = nn.Linear(case.hidden, 1)

    def forward(self, x, u):
        if self.emb is not None:
            x = torch.cat([x, self.emb(u)[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)
        return self.head(self.lstm(x)[0]).squeeze(-1)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_project(case, x, y, u, steps, device) -> float:
    cfg = ModelConfig(
        model="lstm_embeddings" if case.embedding_dim else "lstm",
        n_inputs=N_INPUTS,
        hidden_size=case.hidden,
        num_layers=case.layers,
        dropout=0.0,
        embedding_dim=case.embedding_dim or 16,
        n_users=int(u.max()),
    )
    model = build_model(cfg).to(device).train()
    train_cfg = TrainConfig(batch_size=case.batch, amp=case.amp, lr=1e-3)
    opt = make_optimizer(model, train_cfg, device)  # as `hr-lstm train` makes it
    order = torch.randperm(len(x), device=device)
    train_epoch(model, opt, x, y, u, order[: 2 * case.batch], train_cfg)  # warm-up (cuDNN plans, allocator)
    _sync(device)
    started = time.perf_counter()
    sq, _ = train_epoch(model, opt, x, y, u, order[: steps * case.batch], train_cfg)
    sq.item()  # the per-epoch sync the real loop does
    _sync(device)
    return steps * case.batch / (time.perf_counter() - started)


def time_bare(case, x, y, u, steps, device) -> float:
    model = BareLSTM(case, int(u.max()) + 1).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    amp = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=case.amp == "bf16")

    def step(i):
        idx = slice(i * case.batch, (i + 1) * case.batch)
        with amp:
            loss = (model(x[idx], u[idx]).float() - y[idx]).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(2):
        step(i)
    _sync(device)
    started = time.perf_counter()
    for i in range(steps):
        step(i)
    _sync(device)
    return steps * case.batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=0, help="timed steps per measurement (default: by device)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", help="run only cases whose name contains this")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(
        f"# {name} | torch {torch.__version__} | cuDNN {torch.backends.cudnn.version() if device.type == 'cuda' else '-'}"
    )

    # Enough steps to time reliably; on a CPU about 256 sequences per measurement keeps the run to minutes.
    def steps_for(case):
        return args.steps or (30 if device.type == "cuda" else max(2, 256 // case.batch))

    cases = CASES + (GPU_CASES if device.type == "cuda" else [])
    cases = [c for c in cases if not args.only or args.only in c.name]
    header = f"{'config':40s} {'(a) seq/s':>10s} {'(a) s/epoch':>11s} {'(b) seq/s':>10s} {'(b) s/epoch':>11s} {'(a)/(b)':>8s}"
    print(header + (f" {'(c) cuDNN off s/epoch':>22s} {'(c)/(a) slowdown':>17s}" if device.type == "cuda" else ""))
    for case in cases:
        steps = steps_for(case)
        n = max(case.batch * (steps + 2), 256)
        x = torch.randn(n, SEQ_LEN, N_INPUTS, device=device)
        y = 140 + 20 * torch.randn(n, SEQ_LEN, device=device)
        u = torch.randint(1, 101, (n,), device=device)
        a = b = 0.0
        for _ in range(args.repeats):  # alternate, keep the best of each
            a = max(a, time_project(case, x, y, u, steps, device))
            b = max(b, time_bare(case, x, y, u, steps, device))
        line = f"{case.name:40s} {a:10.1f} {EPOCH_WORKOUTS / a:11.2f} {b:10.1f} {EPOCH_WORKOUTS / b:11.2f} {a / b:8.2f}"
        if device.type == "cuda" and case.amp == "off":
            torch.backends.cudnn.enabled = False
            c = time_bare(case, x, y, u, max(2, steps // 10), device)
            torch.backends.cudnn.enabled = True
            line += f" {EPOCH_WORKOUTS / c:22.2f} {a / c:16.1f}x"
        print(line, flush=True)
        if case.amp == "bf16" and device.type == "cuda":
            print(
                f"  full FitRec epoch (167,373 workouts) at this rate: {167_373 / a:.1f} s (project), {167_373 / b:.1f} s (bare)"
            )


if __name__ == "__main__":
    main()
