"""`hr_lstm.report`: parameters, notebook discovery, and the one-line errors users see."""

from __future__ import annotations

import argparse
import json
import os
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from hr_lstm.cli import main as cli_main
from hr_lstm.cli.reporting import add_report_arguments, report_config_from_args
from hr_lstm.errors import HRLSTMError
from hr_lstm.paths import NOTEBOOKS_DIR
from hr_lstm.reporting.report import (
    ReportConfig,
    find_notebooks,
    notebook_parameters,
    parse_value,
    read_parameters_file,
    run_report,
)


def write_notebook(path, *sources, parameters="x = 1"):
    cells = [new_markdown_cell("# test"), new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    nb = new_notebook(cells=cells + [new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "hr-lstm", "display_name": "Python (hr-lstm)", "language": "python"}
    nbformat.write(nb, path)
    return path


def parse_args(argv):
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    "text, value",
    [
        ("3", 3),
        ("1e-3", 0.001),
        ("0.5", 0.5),
        ("cuda", "cuda"),
        ("none", None),
        ("null", None),
        ("true", True),
        ("/data/x.json.gz", "/data/x.json.gz"),
    ],
)
def test_parameter_values_are_read_as_yaml(text, value):
    assert parse_value(text) == value


def test_command_line_parameters_override_the_file(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("epochs: 100\ndevice: cuda\nlr: 0.0005\n")
    cfg = report_config_from_args(
        parse_args(
            [
                "-f",
                str(params),
                "-p",
                "epochs",
                "2",
                "--only",
                "02",
                "--out",
                str(tmp_path / "r"),
                "--timeout",
                "60",
                "--no-noinput",
            ]
        )
    )
    assert cfg.parameters == {"epochs": 2, "device": "cuda", "lr": 0.0005}
    assert cfg.only == ("02",) and cfg.timeout_s == 60 and cfg.no_input is False and cfg.out_dir == tmp_path / "r"


@pytest.mark.parametrize("text, message", [("- a\n- b\n", "expected a mapping"), ("a: [1\n", "not valid YAML")])
def test_bad_parameters_file(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(HRLSTMError, match=message):
        read_parameters_file(path)
    with pytest.raises(HRLSTMError, match="cannot read"):
        read_parameters_file(tmp_path / "missing.yaml")


def test_each_notebook_gets_only_the_parameters_it_declares(tmp_path):
    declared = {"epochs": {}, "output_dir": {}}
    assert notebook_parameters(declared, {"epochs": 3, "embedding_dim": 8}, tmp_path) == {
        "epochs": 3,
        "output_dir": str(tmp_path),
    }
    assert notebook_parameters(declared, {"output_dir": "/x"}, tmp_path) == {"output_dir": "/x"}


def test_find_notebooks_in_order_and_only():
    names = [p.stem for p in find_notebooks(NOTEBOOKS_DIR)]
    assert names == sorted(names) and names[0].startswith("01_")
    assert [p.stem for p in find_notebooks(NOTEBOOKS_DIR, ("02", "04"))] == ["02_baseline_lstm", "04_model_comparison"]
    with pytest.raises(HRLSTMError, match="no numbered notebooks"):
        find_notebooks(NOTEBOOKS_DIR, ("99",))


def test_unknown_parameter_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(HRLSTMError, match=r"unknown parameter\(s\) epoch;"):
        run_report(ReportConfig(out_dir=tmp_path, parameters={"epoch": 3}))
    assert not list(tmp_path.iterdir())


def test_out_that_is_a_file_is_one_line_before_any_notebook(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    assert cli_main(["report", "--out", str(afile), "--only", "01"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "afile" in err and afile.read_text() == "keep me"


def test_missing_kernel_is_one_clear_line(tmp_path, capsys):
    assert cli_main(["report", "--kernel", "no-such-kernel", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert (
        "kernel 'no-such-kernel' is not registered" in err
        and "ipykernel install --sys-prefix --name no-such-kernel" in err
        and "leave out --kernel" in err
    )


@pytest.mark.slow
def test_failing_cell_stops_the_run_and_keeps_the_notebook(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    write_notebook(
        notebooks / "01_ok.ipynb",
        "import os\nprint('fine', x, os.environ.get('OMP_NUM_THREADS'))",
        parameters="x = 1\noutput_dir = None",
    )
    write_notebook(notebooks / "02_fails.ipynb", "y = 2", "raise ValueError('no heart rate here')")
    write_notebook(notebooks / "03_never.ipynb", "print('unreachable')")
    out = tmp_path / "out"
    with pytest.raises(HRLSTMError) as info:
        run_report(ReportConfig(notebooks_dir=notebooks, out_dir=out, parameters={"x": 5}, timeout_s=120))
    message = str(info.value)
    assert (
        message
        == f"02_fails: cell In [4] raised ValueError: no heart rate here (executed notebook kept at {out / '02_fails.ipynb'})"
    )
    executed = nbformat.read(out / "02_fails.ipynb", as_version=4)
    assert any(o.output_type == "error" for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert (out / "02_fails.html").is_file() and (out / "01_ok.noinput.html").is_file()
    assert not (out / "03_never.ipynb").exists()
    ok = nbformat.read(out / "01_ok.ipynb", as_version=4)
    assert "fine 5 1" in ok.cells[-1].outputs[0].text, "kernels get KERNEL_ENV"
    assert "OMP_NUM_THREADS" not in os.environ


@pytest.mark.slow
def test_cell_timeout_is_reported(tmp_path):
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    write_notebook(notebooks / "01_slow.ipynb", "import time\ntime.sleep(60)")
    with pytest.raises(HRLSTMError, match=r"01_slow: a cell ran longer than the execution timeout \(2 s"):
        run_report(ReportConfig(notebooks_dir=notebooks, out_dir=tmp_path / "out", timeout_s=2))
    assert (tmp_path / "out" / "01_slow.ipynb").is_file()


def test_hr_lstm_report_command(tmp_path, capsys):
    from hr_lstm.cli import build_parser
    from hr_lstm.cli import main as cli_main

    args = build_parser().parse_args(["report", "-p", "epochs", "1", "-p", "device", "cpu", "--only", "02"])
    assert args.parameter == [["epochs", "1"], ["device", "cpu"]] and args.only == ["02"]
    assert cli_main(["report", "--kernel", "no-such-kernel", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(
        "hr-lstm report: error: Jupyter kernel 'no-such-kernel' is not registered"
    )


def test_example_parameters_file_fits_the_notebooks():
    from hr_lstm.reporting.report import declared_parameters

    values = read_parameters_file(NOTEBOOKS_DIR / "params_gpu.yaml")
    declared = {p for nb in find_notebooks(NOTEBOOKS_DIR) for p in declared_parameters(nb)}
    assert (
        values["device"] == "cuda" and values["steps"] == 3500 and values["amp"] == "bf16" and set(values) <= declared
    )


@pytest.mark.slow
def test_report_runs_on_this_python_whatever_the_user_kernel_points_to(tmp_path, monkeypatch, capfd):
    """Another checkout's `make setup` re-pointed the per-user `hr-lstm` kernel, then was deleted."""
    broken = tmp_path / "home" / "jupyter" / "kernels" / "hr-lstm"
    broken.mkdir(parents=True)
    argv = ["/gone/other-clone/.venv/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (broken / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "old", "language": "python"}))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "home" / "jupyter"))
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "0")  # the user's kernels first, even over this venv's
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "elsewhere"))
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    write_notebook(notebooks / "01_tiny.ipynb", "import sys\nprint(sys.executable)")
    out = tmp_path / "out"
    assert cli_main(["report", "--notebooks", str(notebooks), "--out", str(out), "--timeout", "60"]) == 0
    ran = nbformat.read(out / "01_tiny.ipynb", as_version=4)
    assert ran.cells[-1].outputs[0].text.strip() == sys.executable
    assert ran.metadata.kernelspec.name == "hr-lstm", "the notebook still names the kernel JupyterLab knows"
    assert os.environ["JUPYTER_PATH"] == str(tmp_path / "elsewhere"), "JUPYTER_PATH restored"
    captured = capfd.readouterr()
    assert "without encryption" not in captured.out + captured.err, "IPC transport: no TCP warning from the kernel"
