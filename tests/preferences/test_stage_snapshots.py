"""SFT and KTO snapshots come from the one rows pipeline: the sources the policy names go in
and are recorded, rows split by prompt and hashed like pairs, and each kind loads into its TRL
trainer unchanged (slow: a tiny model)."""

import json
import math
from pathlib import Path

import pytest

from feedback_app.annotation.simulation import simulate
from feedback_app.core.models import DatasetSnapshot
from feedback_app.preferences.feedback import feedback_record
from feedback_app.preferences.pairs import PairPolicy
from feedback_app.preferences.services import snapshot_build
from feedback_app.preferences.stage_rows import StagePolicy
from training.data import read_jsonl, validate_kto_rows, validate_pairs, validate_sft_rows

pytestmark = pytest.mark.django_db
GOOD = "useful and valid"


@pytest.fixture
def ranked_project(make_project, make_user, settings, tmp_path):
    settings.SNAPSHOT_DIR = tmp_path / "snapshots"
    bots = [make_user(f"bot-{i}") for i in range(3)]
    project = make_project(n_tasks=8, k=3, overlap=3, annotators=bots)
    for task in project.tasks.all():
        for cand, text in zip(task.candidates.all(), [GOOD, "plain", "an error"], strict=True):
            cand.text = f" {text} {task.pk}"
            cand.save()
    simulate(project=project, annotators=bots, noise=0.0, seed=1)  # unanimous: GOOD on top
    for i, (response, rating) in enumerate([(" nice", "up"), (" bad", "down"), (" ok", "up")]):
        feedback_record(
            project=project, kind="thumbs", source="web", prompt=f"question {i}",
            response=response, rating=rating,
        )  # fmt: skip
    return project


def rows(snap: DatasetSnapshot) -> list[dict]:
    return read_jsonl(Path(snap.path) / "train.jsonl") + read_jsonl(Path(snap.path) / "test.jsonl")


def build(project, kind, **flags):
    return snapshot_build(
        project=project, policy=PairPolicy(), test_fraction=0.25, kind=kind,
        stage=StagePolicy(**flags),
    )  # fmt: skip


def test_sft_rows_are_the_unanimously_top_candidates_when_the_policy_asks(ranked_project):
    snap = build(ranked_project, "sft", sft_from_rankings=True)
    out = rows(snap)
    assert snap.kind == "sft" and validate_sft_rows(out) == "standard"
    assert len(out) == 8 and all(r["completion"].startswith(f" {GOOD}") for r in out)
    assert snap.counts["sources"] == {"demonstrations": 0, "rankings": 8}
    assert snap.policy["sft_from_rankings"] is True
    assert snap.counts["train"] + snap.counts["test"] == 8


def test_without_a_source_an_sft_snapshot_is_empty_and_says_so(ranked_project):
    snap = build(ranked_project, "sft", sft_from_demonstrations=False)
    assert snap.counts["train"] == 0 and snap.counts["sources"] == {}


def test_kto_rows_come_from_thumbs_and_optionally_from_rankings(ranked_project):
    thumbs = build(ranked_project, "kto")
    out = rows(thumbs)
    assert validate_kto_rows(out) == "standard"
    assert sorted((r["completion"], r["label"]) for r in out) == [
        (" bad", False), (" nice", True), (" ok", True),
    ]  # fmt: skip
    assert thumbs.counts["sources"] == {"feedback": 3}

    both = build(ranked_project, "kto", kto_from_rankings=True)
    assert both.counts["sources"] == {"feedback": 3, "rankings": 8}
    assert both.content_hash != thumbs.content_hash
    assert json.loads((Path(both.path) / "meta.json").read_text())["kind"] == "kto"


def test_the_same_sources_give_the_same_hash_and_row(ranked_project):
    first = build(ranked_project, "kto", kto_from_rankings=True)
    again = build(ranked_project, "kto", kto_from_rankings=True)
    assert first.pk == again.pk


def test_pairs_carry_vote_strength_as_margin_only_when_asked(ranked_project):
    plain = snapshot_build(project=ranked_project, policy=PairPolicy(), test_fraction=0.25)
    margin = snapshot_build(
        project=ranked_project, policy=PairPolicy(with_margin=True), test_fraction=0.25
    )
    assert "margin" not in rows(plain)[0] and "with_margin" not in plain.policy
    out = rows(margin)
    validate_pairs(out)
    assert {r["margin"] for r in out} == {1.0}  # unanimous bots
    assert margin.kind == plain.kind == "pairs"


def _train_one_step_each(snaps: dict, tiny_policy: str) -> None:
    """The files as written, read by `datasets` and handed to TRL's trainer: one step each."""
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from trl import KTOConfig, KTOTrainer, RewardConfig, RewardTrainer, SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_policy)
    common = {
        "per_device_train_batch_size": 2, "max_steps": 1, "bf16": False, "use_cpu": True,
        "report_to": "none", "save_strategy": "no", "disable_tqdm": True, "max_length": 64,
    }  # fmt: skip
    trainers = {
        "sft": (SFTConfig, SFTTrainer, AutoModelForCausalLM),
        "kto": (KTOConfig, KTOTrainer, AutoModelForCausalLM),
        "pairs": (RewardConfig, RewardTrainer, AutoModelForSequenceClassification),
    }
    for kind, snap in snaps.items():
        config, trainer_cls, model_cls = trainers[kind]
        path = str(Path(snap.path) / "train.jsonl")
        dataset = load_dataset("json", data_files=path, split="train")
        extra = {"num_labels": 1} if kind == "pairs" else {}
        model = model_cls.from_pretrained(tiny_policy, **extra)
        model.config.pad_token_id = tokenizer.pad_token_id
        trainer = trainer_cls(
            model=model,
            args=config(output_dir=str(Path(snap.path).parent / kind), **common),
            train_dataset=dataset,
            processing_class=tokenizer,
        )
        assert math.isfinite(trainer.train().training_loss), kind


@pytest.mark.slow
def test_each_dataset_kind_loads_into_its_trl_trainer_unchanged(ranked_project, tiny_policy):
    snaps = {
        "sft": build(ranked_project, "sft", sft_from_rankings=True),
        "kto": build(ranked_project, "kto", kto_from_rankings=True),
        "pairs": snapshot_build(
            project=ranked_project, policy=PairPolicy(with_margin=True), test_fraction=0.25
        ),
    }
    _train_one_step_each(snaps, tiny_policy)


@pytest.fixture
def chat_project(ranked_project):
    """The ranked project with every task's prompt a chat (system + user turn)."""
    for task in ranked_project.tasks.select_related("prompt"):
        prompt = task.prompt
        prompt.messages = [
            {"role": "system", "content": "Answer in one line."},
            {"role": "user", "content": prompt.text},
        ]
        prompt.save()
    return ranked_project


@pytest.mark.slow
def test_chat_sft_and_kto_rows_load_into_trl_trainers_unchanged(chat_project, tiny_policy):
    """Chats give TRL's conversational formats (SFT `messages`, KTO message-list prompt and
    completion; thumbs on plain prompts become one user turn), which its trainers read as
    written."""
    sft = build(chat_project, "sft", sft_from_rankings=True)
    kto = build(chat_project, "kto", kto_from_rankings=True)
    sft_rows, kto_rows = rows(sft), rows(kto)
    assert validate_sft_rows(sft_rows) == "messages"
    assert [m["role"] for m in sft_rows[0]["messages"]] == ["system", "user", "assistant"]
    assert sft_rows[0]["messages"][-1]["content"].startswith(f" {GOOD}")
    assert validate_kto_rows(kto_rows) == "conversational"
    thumbs = [r for r in kto_rows if r["prompt"][0]["role"] == "user"]
    assert len(thumbs) == 3 and all(len(r["prompt"]) == 1 for r in thumbs)
    assert {r["completion"][0]["role"] for r in kto_rows} == {"assistant"}
    _train_one_step_each({"sft": sft, "kto": kto}, tiny_policy)
