"""The training budget in optimiser steps: the same steps whatever the batch size, epochs derived
from the data size, early stopping counted in validation checks of a fixed number of steps, the
original project's --epochs unchanged, and resume in the middle of an epoch."""

import json

import pytest

from hr_lstm.cli import build_parser, main
from hr_lstm.cli.training import run_config_from_args
from hr_lstm.training.budget import plan_budget
from hr_lstm.training.config import TrainConfig
from hr_lstm.training.run import run

TINY = [
    "--model",
    "lstm",
    "--hidden-size",
    "16",
    "--num-layers",
    "1",
    "--lr",
    "0.01",
    "--device",
    "cpu",
    "--min-epochs",
    "0",
]


def _metrics(folder):
    return json.loads((folder / "lstm_metrics.json").read_text())


@pytest.mark.parametrize("batch_size", [8, 32, 128])
def test_a_step_budget_is_the_same_number_of_steps_whatever_the_batch_size(batch_size):
    budget = plan_budget(TrainConfig(steps=3000, batch_size=batch_size), n_train=1_000)
    assert budget.total_steps == 3000 and budget.eval_every == 150
    assert budget.epochs == pytest.approx(3000 / -(-1_000 // batch_size))  # derived from the data size


def test_epochs_derive_from_the_data_size_under_a_step_budget():
    small, large = (plan_budget(TrainConfig(steps=3000), n_train=n) for n in (1_000, 20_000))
    assert small.total_steps == large.total_steps == 3000
    assert small.epochs == pytest.approx(3000 / 32) and large.epochs == pytest.approx(3000 / 625)


def test_a_data_set_too_large_for_the_budget_gets_its_minimum_epochs():
    """The full FitRec file's ~135,000 training workouts: 3,000 steps would not see each once."""
    budget = plan_budget(TrainConfig(steps=3000, min_epochs=2), n_train=135_000)
    assert budget.total_steps == 2 * 4_219 and budget.epochs == 2


def test_the_original_epochs_flag_keeps_its_meaning():
    budget = plan_budget(TrainConfig(epochs=4, steps=3000, batch_size=10), n_train=95)
    assert (budget.total_steps, budget.steps_per_epoch, budget.eval_every) == (40, 10, 10)


@pytest.mark.parametrize("batch_size", ["4", "16"])
def test_a_run_takes_exactly_its_steps_and_checks_at_fixed_steps(sim_data, tmp_path, batch_size):
    args = ["train", *TINY, "--steps", "14", "--eval-every", "5", "--batch-size", batch_size]
    assert main([*args, "--data", str(sim_data), "--out", str(tmp_path)]) == 0
    m = _metrics(tmp_path)
    assert m["steps_run"] == 14 and m["history"]["step"] == [5, 10, 14]
    assert m["history"]["epoch"][-1] == pytest.approx(14 / -(-m["n_train"] // int(batch_size)), abs=0.01)


@pytest.mark.parametrize("batch_size", ["4", "16"])
def test_early_stopping_counts_checks_of_a_fixed_number_of_steps(sim_data, tmp_path, batch_size):
    """A learning rate of 0 never improves after the first check: patience 2 stops after the third
    check, at step 9, whatever the batch size."""
    args = ["train", *TINY, "--steps", "60", "--eval-every", "3", "--patience", "2", "--lr", "0", "--lr-schedule"]
    args += ["constant", "--batch-size", batch_size, "--data", str(sim_data), "--out", str(tmp_path)]
    assert main(args) == 0
    m = _metrics(tmp_path)
    assert m["history"]["step"] == [3, 6, 9] and m["steps_run"] == 9 and m["best_step"] == 3


class Killed(Exception):
    pass


def test_resume_in_the_middle_of_an_epoch_continues_exactly(sim_data, tmp_path):
    """Checks every 7 steps cut epochs mid-way; killed after the second check's state was saved (at
    the third check's log line), the resumed run matches a straight one, schedule and shuffling included."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    args = ["train", *TINY, "--steps", "28", "--eval-every", "7", "--batch-size", "16", "--data", str(sim_data)]
    assert main([*args, "--out", str(straight)]) == 0
    assert _metrics(straight)["n_train"] % (16 * 7) != 0  # the checks do fall inside epochs

    def kill_at_third_check(line):
        if line.startswith("step 21/28"):
            raise Killed(line)

    with pytest.raises(Killed):
        run(run_config_from_args(build_parser().parse_args([*args, "--out", str(resumed)])), log=kill_at_third_check)
    assert main([*args, "--resume", "--out", str(resumed)]) == 0
    a, b = _metrics(straight), _metrics(resumed)
    assert b["history"]["step"] == [7, 14, 21, 28]
    assert b["history"]["train_loss"] == pytest.approx(a["history"]["train_loss"], rel=1e-5)
    assert b["test_mae"] == pytest.approx(a["test_mae"], rel=1e-5)
