"""Learning test: the controlled-sentiment experiment (DPO paper sec. 6.1) at small scale.

Could fail: the reward model must rank held-out pairs well above chance, and the DPO policy's
fresh samples must show the lexicon's positive sentiment more often than its parent's.
"""

import json
import math

import pytest

from training.config import BootstrapConfig
from training.experiment import ExperimentConfig, run_sentiment_experiment


@pytest.mark.slow
def test_dpo_raises_positive_sentiment_and_reward_model_beats_chance(tmp_path, small_base_model):
    config = ExperimentConfig.quick()
    assert config.bootstrap == BootstrapConfig.small()
    table = run_sentiment_experiment(tmp_path, config, base_model=small_base_model)
    (tmp_path / "table.json").write_text(json.dumps(table, indent=2))
    print(json.dumps({k: v for k, v in table.items() if not isinstance(v, list)}, indent=2))

    assert table["train_pairs"] >= 150 and table["test_pairs"] >= 40
    assert table["reward_model_heldout_accuracy"] >= 0.65
    assert table["dpo_last_loss"] < table["dpo_first_loss"]
    assert table["policy_positive_rate"] >= table["parent_positive_rate"] + 0.05
    assert table["policy_mean_sentiment"] > table["parent_mean_sentiment"]
    assert table["win_rate_lexicon_judge"] > 0.55
    assert math.isfinite(table["kl_policy_parent_nats"]) and table["kl_policy_parent_nats"] > 0
