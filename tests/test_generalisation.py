"""Leave-one-family-out: every cell of the train x test table is scored, the variants share their
athletes (so a model's embeddings apply across families), and each variant's data is written once."""

import numpy as np
import pytest

from hr_lstm.data import source
from hr_lstm.evaluation.generalisation import GeneralisationConfig, ratio_matrix, run_generalisation


@pytest.mark.slow
def test_every_train_and_test_variant_pair_is_scored_against_its_noise_floor(tmp_path, monkeypatch):
    monkeypatch.setattr(
        source,
        "default_sim_data_path",
        lambda users, seed, variant: tmp_path / f"sim_{users}_{seed}_{variant}.json.gz",
    )
    cfg = GeneralisationConfig(
        variants=("default", "second_order"),
        users=6,
        changes={"train.steps": 6, "train.min_epochs": 0, "train.device": "cpu", "model.hidden_size": 8},
        out_dir=str(tmp_path / "ck"),
    )
    table = run_generalisation(cfg, log=lambda *a: None)
    assert sorted(zip(table["train"], table["test"])) == [
        ("default", "default"),
        ("default", "second_order"),
        ("second_order", "default"),
        ("second_order", "second_order"),
    ]
    assert np.isfinite(table["mae_over_floor"]).all() and (table["mae_over_floor"] > 1).all()
    assert (table["known_users"] == 1.0).all()  # same seed, same athletes in every variant
    assert ratio_matrix(table).shape == (2, 2)
    assert sorted(p.name for p in tmp_path.glob("*.json.gz")) == [
        "sim_6_0_default.json.gz",
        "sim_6_0_second_order.json.gz",
    ]


def test_notebooks_repeat_their_run_on_a_held_out_family(tmp_path, monkeypatch):
    from hr_lstm.reporting import analysis

    monkeypatch.setattr(
        source,
        "default_sim_data_path",
        lambda users, seed, variant: tmp_path / f"sim_{users}_{seed}_{variant}.json.gz",
    )
    cfg = analysis.run_config(
        model="lstm", sim_users=4, steps=3, hidden_size=8, num_layers=1, device="cpu", output_dir=tmp_path
    )
    held_out = analysis.held_out_family(cfg, "random")
    assert held_out["variant"] == "random" and held_out["data_path"].endswith("sim_4_0_random.json.gz")
    assert held_out["mae_over_floor"] == pytest.approx(held_out["test_mae"] / held_out["noise_floor_mae"])
    # its checkpoint lives apart from the notebook's own, which it must not replace
    assert (tmp_path / "checkpoints" / "held_out_random" / "lstm_best.pt").is_file()
    assert not (tmp_path / "checkpoints" / "lstm_best.pt").exists()

    own = {**held_out, "variant": None, "test_mae": 9.0, "noise_floor_mae": 3.0, "mae_over_floor": 3.0}
    table = analysis.family_table(own, held_out, "default")
    assert list(table.index) == ["default", "random (held out)"] and table.loc["default", "mae_over_floor"] == 3.0
    recorded = {"models": {"lstm": own}, "held_out_family": {"lstm": held_out}}
    both = analysis.held_out_table(recorded, {"models": {"lstm_embeddings": own}})
    assert list(both.index) == ["LSTM"] and both.loc["LSTM", "x_floor (random)"] == held_out["mae_over_floor"]

    # nothing to repeat on real data, on the family already run, or when switched off
    assert analysis.held_out_family(cfg.override({"data.path": str(tmp_path / "real.json")}), "random") is None
    assert analysis.held_out_family(cfg.override({"data.sim_variant": "random"}), "random") is None
    assert analysis.held_out_family(cfg, None) is None
    with pytest.raises(Exception, match="choose a held-out family"):
        analysis.held_out_family(cfg, "default")
