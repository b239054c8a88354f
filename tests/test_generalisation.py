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
