"""Command-line manners: fast help, defaults shown, one flag spelling, exit status, progress, CPU quota."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hr_lstm import cli
from hr_lstm.errors import HRLSTMError


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def _help(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as stopped:
        cli.build_parser().parse_args([*argv, "--help"])
    assert stopped.value.code == 0
    return capsys.readouterr().out


# 1. `hr-lstm --help` / `--version` import no command module (no torch)
def test_top_level_parser_imports_no_command_module():
    out = _python(
        "import sys\n"
        "from hr_lstm.cli import build_parser\n"
        "text = build_parser().format_help()\n"
        "print('torch' in sys.modules, any(m in sys.modules for m in ('hr_lstm.cli.training', 'hr_lstm.cli.data')))\n"
        "print(text)\n"
    )
    flags, help_text = out.split("\n", 1)
    assert flags == "False False"
    for name, (help_line, _) in cli.COMMANDS.items():
        assert name in help_text and help_line.split()[0] in help_text


def test_only_the_chosen_command_module_is_imported():
    out = _python(
        "import sys\n"
        "from hr_lstm.cli import build_parser\n"
        "args = build_parser().parse_args(['import', 'a.fit', '--user', 'me', '--out', 'x.json'])\n"
        "print(args.func.__module__, 'torch' in sys.modules, 'hr_lstm.cli.evaluation' in sys.modules)\n"
    )
    assert out.split() == ["hr_lstm.cli.data", "False", "False"]


def test_version_is_fast_path(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out.startswith("hr_lstm ")


# 2. every command's help has a description and shows defaults
@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_command_help_has_description_and_defaults(capsys, name):
    text = " ".join(_help(capsys, name).split())
    assert cli.COMMANDS[name][0] in text
    assert "(default:" in text


def test_defaults_shown_with_dashed_spelling_only(capsys):
    text = _help(capsys, "evaluate")
    assert "--device DEVICE" in text and "(default: auto)" in " ".join(text.split())
    assert "--warm-start-min" in text and "--warm_start_min" not in text
    train = " ".join(_help(capsys, "train").split())
    assert "--hidden-size HIDDEN_SIZE (default: 64)" in train and "--hidden_size HIDDEN_SIZE" not in train


# 3. one spelling (dashed), the original snake_case accepted too; --device auto
@pytest.mark.parametrize(
    "argv, dashed, snake",
    [
        (["ingest", "f.json"], "--skip-bad", "--skip_bad"),
        (["ingest", "f.json"], ["--min-workouts", "3"], ["--min_workouts", "3"]),
        (["synth"], ["--min-workouts", "3"], ["--min_workouts", "3"]),
        (["synth"], ["--max-workouts", "30"], ["--max_workouts", "30"]),
        (["import", "a.fit", "--user", "u", "--out", "o"], ["--seq-len", "100"], ["--seq_len", "100"]),
        (["predict", "a.fit", "--checkpoint", "c.pt"], ["--warm-start-min", "2"], ["--warm_start_min", "2"]),
        (["evaluate", "--checkpoint", "c.pt"], ["--warm-start-min", "0,2"], ["--warm_start_min", "0,2"]),
        (["train"], ["--hidden-size", "32"], ["--hidden_size", "32"]),
        (["baselines"], ["--ridge-alpha", "2"], ["--ridge_alpha", "2"]),
        (["report"], ["--parameters-file", "p.yaml"], ["--parameters_file", "p.yaml"]),
    ],
)
def test_both_spellings_parse_the_same(argv, dashed, snake):
    as_list = lambda v: [v] if isinstance(v, str) else v  # noqa: E731
    a = vars(cli.build_parser().parse_args([*argv, *as_list(dashed)]))
    b = vars(cli.build_parser().parse_args([*argv, *as_list(snake)]))
    default = vars(cli.build_parser().parse_args(argv))
    assert a == b != default


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--checkpoint", "c.pt"],
        ["predict", "a.fit", "--checkpoint", "c.pt"],
        ["personalize", "--checkpoint", "c.pt", "--workouts", "a.fit", "--out", "o.pt"],
    ],
)
def test_device_defaults_to_auto(argv):
    assert cli.build_parser().parse_args(argv).device == "auto"


# 4. exit status documented; failures on stderr
def test_exit_status_in_top_level_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exit status" in text and "130" in text and "2 a usage error" in text


def test_exit_status_documented_in_reliability_doc():
    text = (Path(__file__).parents[1] / "docs" / "reliability.md").read_text()
    assert "exit status 130" in text and "tests/test_cli_manners.py::test_exit_status_in_top_level_help" in text


def test_import_failures_go_to_stderr(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n")
    out = tmp_path / "none.json"
    assert cli.main(["import", str(bad), "--user", "me", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "Nothing imported" in captured.err and "Nothing imported" not in captured.out
    assert "Imported 0 of 1 recordings" in captured.out and not out.exists()


def test_errors_go_to_stderr_with_status_2(tmp_path, capsys):
    assert cli.main(["ingest", str(tmp_path / "missing.json")]) == 2
    captured = capsys.readouterr()
    assert "hr-lstm ingest: error:" in captured.err and not captured.out


# 5. report without the notebooks extra: how to install it
def test_report_without_notebooks_extra_says_how_to_install(monkeypatch, tmp_path):
    from hr_lstm.reporting.report import ReportConfig, run_report

    monkeypatch.setitem(sys.modules, "papermill", None)
    with pytest.raises(HRLSTMError, match=r'pip install -e "\.\[notebooks\]"'):
        run_report(ReportConfig(out_dir=tmp_path))


def test_report_command_without_extra_exits_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "nbconvert", None)
    assert cli.main(["report", "--out", str(tmp_path)]) == 2
    assert "notebooks" in capsys.readouterr().err


# 6. worker counts honour the CPU quota
def test_default_workers_honours_cgroup_quota(monkeypatch):
    from hr_lstm.data import ingest

    monkeypatch.setattr(ingest, "cgroup_cpu_quota", lambda: None)
    unlimited = ingest.default_workers()
    assert unlimited >= 1
    monkeypatch.setattr(ingest, "cgroup_cpu_quota", lambda: 2.0)
    assert ingest.default_workers() == min(unlimited, 2)
    monkeypatch.setattr(ingest, "cgroup_cpu_quota", lambda: 0.5)
    assert ingest.default_workers() == 1
    if hasattr(os, "sched_getaffinity") and not hasattr(os, "process_cpu_count"):
        monkeypatch.setattr(ingest, "cgroup_cpu_quota", lambda: None)
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2})
        assert ingest.default_workers() == 3


@pytest.mark.parametrize(
    "text, cpus", [("max 100000\n", None), ("200000 100000\n", 2.0), ("50000 100000", 0.5), ("", None)]
)
def test_cgroup_cpu_max_is_read(tmp_path, text, cpus):
    from hr_lstm.data.ingest import cgroup_cpu_quota

    path = tmp_path / "cpu.max"
    path.write_text(text)
    assert cgroup_cpu_quota(path) == cpus
    assert cgroup_cpu_quota(tmp_path / "absent") is None


# 7. progress on long silent steps; numbers unchanged
def test_synth_reports_progress_per_chunk_and_same_bytes(tmp_path):
    from hr_lstm.data.simulate import SimConfig, simulate

    cfg = dict(n_users=40, seed=3, min_workouts=1, max_workouts=2)
    lines: list[str] = []
    simulate(SimConfig(**cfg), tmp_path / "a.json.gz", log=lines.append)
    simulate(SimConfig(**cfg), tmp_path / "b.json.gz")
    assert len(lines) >= 2 and "simulated 40/40 athletes" in lines[-1]
    assert (tmp_path / "a.json.gz").read_bytes() == (tmp_path / "b.json.gz").read_bytes()


def test_physiological_fit_reports_progress_and_same_numbers(tmp_path):
    from hr_lstm.data.simulate import SimConfig, simulate
    from hr_lstm.models.baselines import BaselineConfig, fit
    from hr_lstm.training.config import RunConfig
    from hr_lstm.training.prepare import prepare

    path = tmp_path / "sim.json.gz"
    simulate(SimConfig(n_users=12, seed=5, min_workouts=10, max_workouts=11), path)
    cfg = RunConfig()
    cfg.data.path = str(path)
    prepared = prepare(cfg, log=lambda *_: None)
    bl = BaselineConfig(baselines=("physiological",), max_nfev=3, cold_start="median")
    lines: list[str] = []
    with_log = fit(prepared, bl, log=lines.append)
    quiet = fit(prepared, bl)
    n = len(with_log.physio_params)
    assert any("athletes fitted" in line for line in lines) and f"{n}/{n} athletes fitted" in lines[-1]
    assert with_log.physio_params.equals(quiet.physio_params)


def test_synth_command_progress_goes_to_stderr(tmp_path, capsys):
    out = tmp_path / "s.json.gz"
    assert cli.main(["synth", "--users", "20", "--out", str(out), "--min-workouts", "1", "--max-workouts", "1"]) == 0
    captured = capsys.readouterr()
    assert "simulated 20/20 athletes" in captured.err and captured.out.startswith("Wrote ")
