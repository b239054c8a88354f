"""`hr-lstm report`: the notebooks, headless, into HTML."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import HRLSTMError
from ..paths import NOTEBOOKS_DIR, REPORTS_DIR, check_writable
from ..reporting.report import DEFAULT_TIMEOUT_S, ReportConfig, parse_value, read_parameters_file
from ..reporting.report import run_report as run_notebooks
from .common import flag


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="notebook parameter (repeatable); the value is read as YAML, so 100 is a number",
    )
    flag(parser, "parameters_file", "-f", metavar="YAML", help="parameters from a YAML mapping; -p values override it")
    parser.add_argument(
        "--out",
        default=str(REPORTS_DIR),
        metavar="DIR",
        help="executed notebooks, HTML and metrics (default: reports/)",
    )
    parser.add_argument("--notebooks", default=str(NOTEBOOKS_DIR), metavar="DIR", help="default: notebooks/")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NN",
        help="run only notebooks whose names start with this (repeatable), e.g. --only 02",
    )
    parser.add_argument(
        "--kernel",
        default=None,
        metavar="NAME",
        help="a registered Jupyter kernel to run the notebooks in (default: this Python, with no registration needed)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help="seconds one cell may run",
    )
    flag(parser, "no_noinput", dest="no_input", action="store_false", help="skip the NN_name.noinput.html variants")


def report_config_from_args(args) -> ReportConfig:
    parameters = read_parameters_file(args.parameters_file) if args.parameters_file else {}
    parameters.update({name: parse_value(value) for name, value in args.parameter})
    if args.timeout < 1:
        raise HRLSTMError(f"--timeout {args.timeout}: must be at least 1 second")
    return ReportConfig(
        notebooks_dir=Path(args.notebooks),
        out_dir=Path(args.out),
        parameters=parameters,
        kernel=args.kernel,
        timeout_s=args.timeout,
        no_input=args.no_input,
        only=tuple(args.only),
    )


def run_report(args) -> int:
    config = report_config_from_args(args)
    check_writable(config.out_dir)  # a file given as --out, a read-only folder: one line, before any notebook
    run_notebooks(config)
    return 0
