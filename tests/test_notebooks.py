"""The notebooks: committed clean, and run end to end through `hr_lstm.report` on a tiny simulated set."""

from __future__ import annotations

import contextlib
import io
import json
import re

import nbformat
import pytest

from hr_lstm.paths import NOTEBOOKS_DIR
from hr_lstm.reporting.analysis import BASELINE_LABELS, MEAN_BASELINE, NOISE_FLOOR
from hr_lstm.reporting.report import ReportConfig, run_report

NAMES = [
    "01_data_exploration",
    "02_baseline_lstm",
    "03_embedding_lstm",
    "04_model_comparison",
    "05_your_workouts",
    "06_ablation",
    "07_plan_a_workout",
]
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
TRAINING_PARAMETERS = {
    "data_path",
    "sim_users",
    "device",
    "epochs",
    "batch_size",
    "hidden_size",
    "num_layers",
    "dropout",
    "embedding_dim",
    "lr",
    "patience",
    "seed",
    "output_dir",
}
# Small enough for CI's 2 cores, large enough that both models beat the mean heart rate.
TINY = dict(
    device="cpu",
    epochs=10,
    batch_size=8,
    hidden_size=32,
    num_layers=1,
    dropout=0.0,
    embedding_dim=8,
    lr=0.01,
    patience=10,
    seed=0,
    rungs="embedding,auto",  # 05: two rungs and a short athlete-alone model keep the test quick
    athlete_epochs=2,
    check_athletes=2,  # 07: two simulated athletes, three days of form each
    check_days=3,
)
MIN_FIGURES = {
    "01_data_exploration": 6,
    "02_baseline_lstm": 4,
    "03_embedding_lstm": 6,
    "04_model_comparison": 1,
    "05_your_workouts": 3,
    "06_ablation": 1,
    "07_plan_a_workout": 3,
}


def test_the_story_notebooks_come_first():
    assert [nb.stem for nb in NOTEBOOKS][: len(NAMES)] == NAMES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), "commit notebooks without outputs"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[0], "exactly one `parameters` cell, the first code cell"
    for cell in code:
        assert "def " not in cell.source and "sys.path" not in cell.source, cell.source
    assert nb.metadata.kernelspec.name == "hr-lstm"
    assert "record_metrics" in code[-1].source, "the last cell records the notebook's metrics"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_has_a_sentence_under_it(path):
    cells = nbformat.read(path, as_version=4).cells
    for cell, following in zip(cells, cells[1:] + [None]):
        if cell.cell_type == "code" and re.search(r"\bplots\.\w+\(", cell.source):
            assert following is not None and following.cell_type == "markdown", cell.source


@pytest.mark.parametrize("name", ["02_baseline_lstm", "03_embedding_lstm"])
def test_training_notebooks_take_the_original_flags(name):
    import papermill

    assert TRAINING_PARAMETERS <= set(papermill.inspect_notebook(str(NOTEBOOKS_DIR / f"{name}.ipynb")))


@pytest.fixture(scope="module")
def report(sim_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        cfg = ReportConfig(
            out_dir=out,
            parameters={"data_path": str(sim_data), **TINY},
            timeout_s=900,
            only=tuple(name[:2] for name in NAMES),
        )
        written = run_report(cfg)
    return out, written, log.getvalue()


def metrics(out, name):
    return json.loads((out / f"{name}.metrics.json").read_text())


@pytest.mark.slow
def test_report_writes_notebooks_html_and_metrics(report):
    out, written, _ = report
    for name in NAMES:
        for suffix in (".ipynb", ".html", ".noinput.html", ".metrics.json"):
            assert (out / f"{name}{suffix}").is_file(), f"{name}{suffix}"
    assert {p.name for p in written} >= {f"{n}.html" for n in NAMES}


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_executed_notebook_has_parameters_and_no_errors(report, name):
    out, _, _ = report
    nb = nbformat.read(out / f"{name}.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "output_dir" in injected[0].source
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_html_embeds_the_figures(report, name):
    out, _, _ = report
    html = (out / f"{name}.html").read_text()
    assert html.count('src="data:image/png;base64,') >= MIN_FIGURES[name]
    shared = (out / f"{name}.noinput.html").read_text()
    assert shared.count('src="data:image/png;base64,') >= MIN_FIGURES[name]
    assert "record_metrics" in html and "record_metrics" not in shared, "the no-input variant hides the code"


@pytest.mark.slow
def test_trained_models_beat_the_mean_baseline(report):
    out, _, _ = report
    for name, model in (("02_baseline_lstm", "lstm"), ("03_embedding_lstm", "lstm_embeddings")):
        m = metrics(out, name)
        mean_mae = m["references"][MEAN_BASELINE]["test_mae"]
        assert m["models"][model]["test_mae"] < mean_mae, (name, m["models"][model]["test_mae"], mean_mae)
        assert 0 < m["references"][NOISE_FLOOR]["test_mae"] < m["models"][model]["test_mae"]
    assert metrics(out, "03_embedding_lstm")["basic_model_source"].startswith("loaded "), "03 reuses 02's model"


@pytest.mark.slow
def test_data_and_comparison_metrics(report, sim_data):
    out, _, _ = report
    data = metrics(out, "01_data_exploration")
    assert data["n_read"] >= data["n_kept"] > 0 and data["n_users"] == 12 and data["data_path"] == str(sim_data)
    table = metrics(out, "04_model_comparison")["table"]
    assert {"LSTM", "LSTM + user embedding", NOISE_FLOOR, *BASELINE_LABELS.values()} <= set(table)
    assert table["LSTM"]["test_mae"] == metrics(out, "02_baseline_lstm")["models"]["lstm"]["test_mae"]


@pytest.mark.slow
def test_model_differences_carry_bootstrap_intervals(report):
    out, _, _ = report
    difference = metrics(out, "03_embedding_lstm")["embedding_vs_basic"]
    assert difference["ci_low_bpm"] <= difference["difference_bpm"] <= difference["ci_high_bpm"]
    assert difference["n_athletes"] == 12 and metrics(out, "04_model_comparison")["embedding_vs_basic"] == difference
    ablation = metrics(out, "06_ablation")
    rows = {r["row"]: r for r in ablation["rows"]}
    assert list(rows)[0].startswith("default") and len(rows) == 5
    for name, row in list(rows.items())[1:]:
        assert row["95% CI low"] <= row["Δ MAE vs default"] <= row["95% CI high"], name
    original_row = next(r for n, r in rows.items() if n.startswith("original"))
    assert original_row["Δ MAE vs default"] > 0, (
        "the default recipe beats the original project's experiment on seen athletes"
    )
    cold = ablation["cold_start"]
    assert len(cold) == 2 and all(r["test MAE"] > 0 for r in cold)
    assert ablation["parameters"]["split"]["kind"] == "user_time", "the seen-athlete table is not the cold-start one"


@pytest.mark.slow
def test_log_has_a_line_per_notebook_and_per_epoch(report):
    _, _, log = report
    for i, name in enumerate(NAMES, 1):
        assert f"[{i}/{len(NAMES)}] {name}: running" in log and f"[{i}/{len(NAMES)}] {name}: done" in log
    assert len(re.findall(r"epoch +\d+/10 \|", log)) >= 2 * 2
    assert "Executing Cell" not in log and "\r" not in log


@pytest.mark.slow
def test_your_workouts_runs_on_the_example_runner_and_scores_the_latest_runs(report):
    out, _, _ = report
    recorded = metrics(out, "05_your_workouts")
    assert recorded["workout_files"] and all("runner_a" in f for f in recorded["workout_files"])
    rows = {row["row"]: row for row in recorded["latest_20_percent"]}
    assert "own mean heart rate (earlier 80%)" in rows and "physiological baseline (per athlete)" in rows
    assert any(name.startswith("personalised: auto") for name in rows) and recorded["chosen_rung"]


@pytest.mark.slow
def test_plan_notebook_plans_under_the_ceiling_and_checks_on_simulated_athletes(report):
    out, _, _ = report
    recorded = metrics(out, "07_plan_a_workout")
    assert recorded["safe"]  # 03's checkpoint carries a calibrated band
    assert recorded["plan_finish_s"] <= recorded["even_finish_s"]
    planned = [row for row in recorded["check"] if row["planned"]]
    assert planned and all(0 <= row["over_plan"] <= 1 for row in planned)
    assert {"07_plan_a_workout.html"} <= {p.name for p in out.iterdir()}
