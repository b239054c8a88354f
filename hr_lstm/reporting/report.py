"""Run the numbered notebooks headless with papermill and export each to HTML.

    hr-lstm report                                   # simulated data, CPU, reports/*.html
    hr-lstm report -p device cuda -p epochs 100 -p data_path /data/endomondoHR_proper.json.gz
    hr-lstm report -f params.yaml --only 02 --out /tmp/r

Each notebook gets the parameters it declares (its `parameters` cell), runs
on the Python that runs `hr-lstm report` (a temporary kernelspec, see `report_kernel`;
`--kernel NAME` picks a registered one instead), logs its output line by line,
and lands in the output folder as `NN_name.ipynb`, `NN_name.html` (figures
embedded) and `NN_name.noinput.html` (outputs only, for sharing). A failing
cell stops the run with one line naming the notebook and the error; the
executed notebook (and its HTML) stay behind to read.

papermill, nbconvert and jupyter_client come with the `notebooks` extra; they are imported
where they are used, so the rest of the package works without them.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import yaml

from ..console import say
from ..errors import HRLSTMError
from ..paths import NOTEBOOKS_DIR, REPORTS_DIR

# The temporary kernelspec's name: the one the notebooks' metadata names, and the one `make setup`
# registers inside the virtual environment for JupyterLab.
KERNEL_NAME = "hr-lstm"
KERNEL_DISPLAY_NAME = "Python (hr-lstm)"
DEFAULT_TIMEOUT_S = 4 * 3600  # per cell: a 100-epoch GPU run on the full FitRec file trains in one cell
REGISTER_HINT = (
    "register it with `python -m ipykernel install --sys-prefix --name {name}`, "
    "or leave out --kernel to run the notebooks on this Python"
)
# Given to the kernels unless already set: one CPU thread for what the notebooks do outside training
# (prediction, personalising, plans); training sets its own threads (--threads, default the cores).
# Two threads hand work to each other; a sleeping one must be woken, which on a virtual machine's idle
# CPU is slow, and a spinning one competes with any other busy process. On a 2-core VM, 42 km of
# `hr-lstm plan`: 2.9 s with two threads, 3.5 s with one, 14.1 s with OMP_WAIT_POLICY=PASSIVE (the
# earlier setting, which made `make report` take 17 min against 9.5); 100 training steps of a 64x2
# LSTM: 1.9 s per 20 steps with two threads idle, 5.3 s beside one busy process, 2.2 s with one
# thread either way.
KERNEL_ENV = {"OMP_NUM_THREADS": "1"}


@dataclass
class ReportConfig:
    notebooks_dir: Path = NOTEBOOKS_DIR
    out_dir: Path = REPORTS_DIR
    parameters: dict = field(default_factory=dict)  # name -> value, given to each notebook declaring it
    kernel: str | None = None  # a registered Jupyter kernel; None: this Python (sys.executable)
    timeout_s: int = DEFAULT_TIMEOUT_S  # per cell
    no_input: bool = True  # also write NN_name.noinput.html (no code, for sharing)
    only: tuple[str, ...] = ()  # notebook name prefixes, e.g. ("02", "04"); empty: all


def parse_value(text: str):
    """A command-line parameter value as YAML: `3` -> 3, `1e-3` -> 0.001, `none` -> None, `cuda` -> 'cuda'."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads 1e-3 as a string
        except ValueError:
            return None if value.lower() == "none" else value
    return value


def read_parameters_file(path: str | Path) -> dict:
    path = Path(path).expanduser()
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise HRLSTMError(f"{path}: cannot read parameters file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise HRLSTMError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise HRLSTMError(f"{path}: expected a mapping of parameter names to values")
    return values


def find_notebooks(notebooks_dir: Path, only: tuple[str, ...] = ()) -> list[Path]:
    """The numbered notebooks (`01_*.ipynb` ...) in order, or those whose names start with `only`."""
    notebooks = sorted(Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))
    if only:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(prefix) for prefix in only)]
    if not notebooks:
        what = f" matching {', '.join(only)}" if only else ""
        hint = (
            "; the notebooks ship with the source, not the wheel: clone the project and run `make report` there, "
            "or pass --notebooks DIR"
            if not Path(notebooks_dir).is_dir()
            else ""
        )
        raise HRLSTMError(f"{notebooks_dir}: no numbered notebooks (NN_name.ipynb){what}{hint}")
    return notebooks


def check_kernel(name: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise HRLSTMError(f"Jupyter kernel {name!r} is not registered; " + REGISTER_HINT.format(name=name)) from None
    python = Path(spec.argv[0]) if spec.argv else None
    if python is not None and python.is_absolute() and not python.exists():
        raise HRLSTMError(
            f"Jupyter kernel {name!r} runs {python}, which no longer exists; " + REGISTER_HINT.format(name=name)
        )
    if python is not None and python.is_absolute() and python.parent != Path(sys.executable).parent:
        say(f"Note: kernel {name!r} runs {python}, not this environment's Python ({sys.executable})")


def declared_parameters(notebook: Path) -> dict:
    import papermill

    return papermill.inspect_notebook(str(notebook))


def notebook_parameters(declared: dict, given: dict, out_dir: Path) -> dict:
    """What one notebook receives: the given values it declares, and the output folder unless given."""
    chosen = {k: v for k, v in given.items() if k in declared}
    for name in ("output_dir", "metrics_dir"):
        if name in declared and name not in given:
            chosen[name] = str(out_dir)
    return chosen


def export_html(notebook: Path, no_input: bool) -> list[Path]:
    """NN_name.html with code and figures (images embedded as data URIs), and the no-input variant."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    written = []
    variants = [("html", {})] + (
        [("noinput.html", dict(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True))]
        if no_input
        else []
    )
    for suffix, options in variants:
        body, _ = HTMLExporter(embed_images=True, **options).from_notebook_node(nb)
        path = notebook.with_suffix("." + suffix)
        path.write_text(body, encoding="utf-8")
        written.append(path)
    return written


_NOISE = re.compile(
    r"^(Executing Cell \d+-*|Ending Cell \d+-*|Executing notebook with kernel: .*|<Figure size .*>)\s*$"
)


def _quiet(record: logging.LogRecord) -> bool:
    """Keep what the notebooks print (one line per epoch) and warnings; drop papermill's per-cell chatter."""
    message = record.getMessage().rstrip("\n")
    record.msg, record.args = message, None
    return bool(message.strip()) and not _NOISE.match(message)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time (pytest and redirect_stdout swap it), flushing each line."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def _papermill_logging() -> None:
    """Papermill logs each cell's output through the `papermill` logger: one flushed line each, on stdout."""
    logger = logging.getLogger("papermill")
    logger.setLevel(logging.INFO)
    if not any(isinstance(h, _StdoutHandler) for h in logger.handlers):
        handler = _StdoutHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("    %(message)s"))
        handler.addFilter(_quiet)
        logger.addHandler(handler)
        logger.propagate = False


def _failure(exc: BaseException, name: str, executed: Path, timeout_s: int) -> HRLSTMError:
    from papermill.exceptions import PapermillExecutionError

    first_line = (str(getattr(exc, "evalue", None) or exc).strip().splitlines() or [""])[0]
    if isinstance(exc, PapermillExecutionError):
        what = f"cell In [{exc.exec_count}] raised {exc.ename}" + (f": {first_line}" if first_line else "")
    elif isinstance(exc, TimeoutError):
        what = f"a cell ran longer than the execution timeout ({timeout_s} s; raise it with --timeout)"
    else:  # the kernel died (out of memory?) or would not start
        what = f"{type(exc).__name__}" + (f": {first_line}" if first_line else "")
    return HRLSTMError(f"{name}: {what} (executed notebook kept at {executed})")


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in os.environ (the kernels inherit it) for the duration, then as it was before."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, old in before.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


@contextmanager
def report_kernel(kernel: str | None) -> Iterator[tuple[str, dict]]:
    """(kernel name, papermill engine options) for the run; KERNEL_ENV set for the kernels meanwhile.

    kernel=None: a kernelspec named `hr-lstm` that runs sys.executable, written into a temporary
    folder put first on JUPYTER_PATH (which jupyter_client searches before the user's and the
    environment's kernels), so no per-user registration, re-pointed or deleted by another
    checkout, is ever used. A named kernel is looked up as Jupyter always does.
    On Unix the kernel talks over IPC sockets in that folder rather than TCP on localhost: nothing
    listens on a port, and ipykernel has no "running over TCP without encryption" warning to print.
    """
    # ipykernel, traitlets: the `notebooks` extra (with papermill), so imported only here
    from ipykernel.kernelspec import write_kernel_spec
    from traitlets.config import Config

    with tempfile.TemporaryDirectory(prefix="hr-lstm-kernel-") as tmp:
        env = {k: v for k, v in KERNEL_ENV.items() if k not in os.environ}
        if kernel is None:
            write_kernel_spec(Path(tmp, "kernels", KERNEL_NAME), overrides={"display_name": KERNEL_DISPLAY_NAME})
            searched = os.environ.get("JUPYTER_PATH")
            env["JUPYTER_PATH"] = tmp + (os.pathsep + searched if searched else "")
        options = {}
        if os.name == "posix":  # ZeroMQ's ipc:// transport is Unix domain sockets
            options["config"] = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(tmp, "ipc"))}})
        with _environment(env):
            yield kernel or KERNEL_NAME, options


def run_report(cfg: ReportConfig) -> list[Path]:
    """Execute the notebooks in order into `cfg.out_dir` and export HTML; returns the files written."""
    # First the notebooks: an installed wheel has none, and that is what to say, whatever the extras.
    notebooks = find_notebooks(Path(cfg.notebooks_dir), tuple(cfg.only))
    try:
        import nbconvert  # noqa: F401  (needed by export_html; checked before any notebook runs)
        import papermill
    except ImportError as exc:
        raise HRLSTMError(
            f"hr-lstm report needs the notebooks extra ({exc.name or exc} is not installed): "
            'pip install -e ".[notebooks]"'
        ) from None

    if cfg.kernel is not None:
        check_kernel(cfg.kernel)
    declared = {nb: declared_parameters(nb) for nb in notebooks}
    unknown = sorted(set(cfg.parameters) - {p for names in declared.values() for p in names})
    if unknown:
        known = sorted({p for names in declared.values() for p in names})
        raise HRLSTMError(f"unknown parameter(s) {', '.join(unknown)}; the notebooks take {', '.join(known)}")
    out_dir = Path(cfg.out_dir).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    _papermill_logging()
    written: list[Path] = []
    started = time.perf_counter()
    with report_kernel(cfg.kernel) as (kernel_name, engine_options):
        for i, notebook in enumerate(notebooks, 1):
            executed = out_dir / notebook.name
            params = notebook_parameters(declared[notebook], cfg.parameters, out_dir)
            shown = " ".join(f"{k}={v}" for k, v in params.items() if k not in ("output_dir", "metrics_dir"))
            say(f"[{i}/{len(notebooks)}] {notebook.stem}: running{' with ' + shown if shown else ''}")
            for stale in (executed, executed.with_suffix(".html"), executed.with_suffix(".noinput.html")):
                stale.unlink(missing_ok=True)  # a failure must never leave an older run's notebook to read
            t0 = time.perf_counter()
            try:
                papermill.execute_notebook(
                    str(notebook),
                    str(executed),
                    parameters=params,
                    kernel_name=kernel_name,
                    log_output=True,
                    progress_bar=False,
                    execution_timeout=cfg.timeout_s,
                    cwd=None,
                    **engine_options,
                )
            except Exception as exc:  # noqa: BLE001 - every failure becomes one line; the notebook stays
                if executed.exists():
                    export_html(executed, no_input=False)
                raise _failure(exc, notebook.stem, executed, cfg.timeout_s) from None
            written.append(executed)
            written += export_html(executed, cfg.no_input)
            say(
                f"[{i}/{len(notebooks)}] {notebook.stem}: done in {time.perf_counter() - t0:.0f} s -> "
                f"{executed.with_suffix('.html')}"
            )
    say(f"Report: {len(notebooks)} notebook(s) in {time.perf_counter() - started:.0f} s; open {out_dir}/*.html")
    return written
