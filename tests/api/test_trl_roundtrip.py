"""The exported file trains TRL's DPOTrainer and RewardTrainer without any transformation."""

from __future__ import annotations

import math

import pytest

from .conftest import client_for
from .test_pairs import rank_all


@pytest.fixture(params=["standard", "conversational"])
def exported(request, make_project, make_user, alice, bob, tmp_path, db):
    from feedback_app.annotation import services
    from feedback_app.annotation.importing import check_records

    project = make_project(name="T", k=3, overlap=2, n_tasks=3, annotators=[alice, bob])
    records = check_records(
        [
            (
                1,
                {
                    "prompt": [{"role": "user", "content": "Say hi"}],
                    "candidates": [" hi", " yo", " no"],
                },
            )
        ],
        k=3,
    )
    if request.param == "conversational":
        services.prompts_import(project=project, records=records)
    rank_all(project, [alice, bob])
    response = client_for(make_user("root", is_staff=True)).get(
        f"/api/v1/projects/{project.pk}/pairs/?metadata=1"
    )
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    return path, request.param


def _args(cls, tmp_path, **extra):
    return cls(
        output_dir=str(tmp_path / cls.__name__),
        per_device_train_batch_size=2,
        max_steps=1,
        bf16=False,
        gradient_checkpointing=False,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        max_length=64,
        **extra,
    )


@pytest.mark.slow
def test_exported_pairs_train_dpo_and_reward_model_one_step(exported, tiny_policy, tmp_path):
    from datasets import load_dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )
    from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer

    path, form = exported
    dataset = load_dataset("json", data_files=str(path), split="train")
    assert len(dataset) > 0
    assert isinstance(dataset[0]["prompt"], list if form == "conversational" else str)
    tokenizer = AutoTokenizer.from_pretrained(tiny_policy)

    dpo = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_policy),
        args=_args(DPOConfig, tmp_path),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    assert math.isfinite(dpo.train().training_loss)

    reward_model = AutoModelForSequenceClassification.from_pretrained(tiny_policy, num_labels=1)
    reward_model.config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    rm = RewardTrainer(
        model=reward_model,
        args=_args(RewardConfig, tmp_path),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    assert math.isfinite(rm.train().training_loss)
