"""The training engine: resume after a kill, data-parallel training with torchrun (gloo, 2 CPUs),
and CPU memory reuse."""

import argparse
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from hr_lstm.cli import main

TINY = [
    "--model",
    "lstm",
    "--hidden_size",
    "32",
    "--num_layers",
    "1",
    "--batch_size",
    "8",
    "--lr",
    "0.01",
    "--device",
    "cpu",
]


def _metrics(folder):
    return json.loads((folder / "lstm_metrics.json").read_text())


class Killed(Exception):
    pass


def _kill_at(prefix):
    def log(line):
        if line.startswith(prefix):
            raise Killed(line)

    return log


def test_resume_continues_exactly_where_the_run_stopped(sim_data, tmp_path):
    """Killed during epoch 3 of 4 (before its state was saved), resumed: the same history as a straight
    run, including where the one-cycle learning-rate schedule stood."""
    from hr_lstm.cli import build_parser
    from hr_lstm.cli.training import run_config_from_args
    from hr_lstm.training.run import run

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    args = ["train", *TINY, "--epochs", "4", "--lr_schedule", "onecycle", "--data", str(sim_data)]
    assert main([*args, "--out", str(straight)]) == 0
    with pytest.raises(Killed):
        run(
            run_config_from_args(build_parser().parse_args([*args, "--out", str(resumed)])), log=_kill_at("epoch   3/4")
        )
    assert (resumed / "lstm_last.pt").exists() and not (resumed / "lstm_metrics.json").exists()
    assert main([*args, "--resume", "--out", str(resumed)]) == 0
    a, b = _metrics(straight), _metrics(resumed)
    assert b["history"]["epoch"] == [1, 2, 3, 4]
    assert b["history"]["train_loss"] == pytest.approx(a["history"]["train_loss"], rel=1e-5)
    assert b["test_mae"] == pytest.approx(a["test_mae"], rel=1e-5)
    # The schedule spans the run, so resuming with other --epochs would silently change it: refused.
    longer = ["train", *TINY, "--epochs", "6", "--lr_schedule", "onecycle", "--data", str(sim_data)]
    assert main([*longer, "--resume", "--out", str(resumed)]) == 2


def test_resume_refuses_a_different_recipe(sim_data, tmp_path, capsys):
    assert main(["train", *TINY, "--epochs", "1", "--data", str(sim_data), "--out", str(tmp_path)]) == 0
    args = [
        "train",
        *TINY,
        "--hidden_size",
        "16",
        "--epochs",
        "2",
        "--resume",
        "--data",
        str(sim_data),
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 2
    assert "lstm_last.pt: --resume with different data, model or features" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_cpu_processes_match_a_single_process(sim_data, tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert main(["train", *TINY, "--epochs", "8", "--data", str(sim_data), "--out", str(single)]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        "-m",
        "hr_lstm.train",
        *TINY,
        "--epochs",
        "8",
        "--data",
        str(sim_data),
        "--out",
        str(ddp),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("epoch   1/8") == 1, "only rank 0 logs"
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in single.iterdir())
    a, b = _metrics(single), _metrics(ddp)
    assert b["world_size"] == 2 and a["world_size"] == 1
    assert (a["n_train"], a["n_val"], a["n_test"]) == (b["n_train"], b["n_val"], b["n_test"])
    assert b["test_mae"] < b["baseline_mean_mae"], "data-parallel training must still learn"
    assert abs(a["test_mae"] - b["test_mae"]) < 2.0


@pytest.mark.slow
def test_cpu_training_reuses_freed_memory_instead_of_faulting_it_back_in():
    # Both settings run in subprocesses: the allocator setting is process-wide and cannot be undone.
    bench = runpy.run_path(str(Path(__file__).parents[1] / "benchmarks" / "cpu_memory_reuse.py"))
    shape = argparse.Namespace(batch_size=8, hidden_size=32, steps=6)
    default, kept = bench["measure"](False, shape), bench["measure"](True, shape)
    if not kept["applied"]:
        pytest.skip("not glibc: the allocator setting does not apply")
    if default["faults"] < 1000:
        pytest.skip(f"this machine's allocator does not fault freed memory back in ({default['faults']:.0f} per step)")
    # Speed is for benchmarks/cpu_memory_reuse.py; what the setting must do is end the page faults.
    assert kept["faults"] < default["faults"] / 4, (default, kept)
