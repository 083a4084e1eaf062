"""Bradley-Terry reward model: TRL's RewardTrainer on preference pairs, and a scorer.

The model is the base LM with a one-output sequence classification head; its score is read at
the last non-padding token. Training minimises -log sigmoid(r(x, y_w) - r(x, y_l)) (minus a
margin when pairs carry one). Start from a pretrained LM: from random weights it does not learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from training.checkpoint import write_run_files
from training.config import RewardTrainConfig
from training.data import Prompt, full_text, pairs_to_dataset, validate_pairs
from training.env import common_trainer_args
from training.models import ModelRef, inference_dtype, load_tokenizer
from training.progress import Progress
from training.results import TrainResult
from training.trainer_utils import new_tracker, run_trainer, token_count


def load_reward_model(ref: ModelRef, *, train: bool) -> tuple[Any, Any]:
    from transformers import AutoModelForSequenceClassification

    tokenizer = load_tokenizer(ref, padding_side="right")
    dtype = torch.float32 if train else inference_dtype()
    model = AutoModelForSequenceClassification.from_pretrained(str(ref), num_labels=1, dtype=dtype)
    # Pooling finds the last token that is not padding, so the model must know the pad id.
    model.config.pad_token_id = tokenizer.pad_token_id
    model.train(train)
    return model, tokenizer


def train_reward(
    base_model: ModelRef,
    pairs: Sequence[dict[str, Any]],
    out_dir: str | Path,
    config: RewardTrainConfig | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train a reward model on `pairs`; save it (loadable by `RewardScorer`) in `out_dir`."""
    config = config or RewardTrainConfig()
    validate_pairs(pairs)
    dataset = pairs_to_dataset(pairs)
    tracker = new_tracker(progress)
    trainer = build_reward_trainer(base_model, dataset, out_dir, config, [tracker.as_callback()])
    used = len(trainer.train_dataset)
    metrics = run_trainer(trainer, tracker)
    tokens = token_count(trainer.train_dataset, ("chosen_ids", "rejected_ids"))
    epochs = trainer.args.num_train_epochs  # `config.epochs_for`: raised for few pairs
    done = metrics["fraction_done"] * epochs
    metrics.update(
        base_model=str(base_model),
        pairs=len(pairs),
        pairs_used=used,
        pairs_dropped_too_long=len(pairs) - used,
        epochs_run=epochs,
        pairs_per_s=used * done / metrics["train_seconds"],
        tokens_per_s=tokens * done / metrics["train_seconds"],
    )
    save_reward_model(trainer, out_dir)
    write_run_files(out_dir, config, metrics, tracker.history, tracker.stopped)
    return TrainResult(
        output_dir=str(out_dir), metrics=metrics, stopped=tracker.stopped, history=tracker.history
    )


def save_reward_model(trainer: Any, out_dir: str | Path) -> None:
    trainer.save_model(str(out_dir))
    trainer.processing_class.save_pretrained(str(out_dir))


def build_reward_trainer(
    base_model: ModelRef,
    dataset: Any,
    out_dir: str | Path,
    config: RewardTrainConfig,
    callbacks: list[Any] | None = None,
) -> Any:
    """A RewardTrainer on `dataset`: pairs, or pairs TRL already tokenised (`chosen_ids`,
    `rejected_ids`), which it then uses as they are (an ensemble tokenises once)."""
    from transformers import set_seed
    from trl import RewardConfig, RewardTrainer

    # The score head is new (randomly initialised) when loading a causal LM: seed it, so the
    # reward model depends on its seed alone, not on what ran before in the process.
    set_seed(config.seed)
    model, tokenizer = load_reward_model(base_model, train=True)
    args = RewardConfig(
        output_dir=str(out_dir),
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs_for(len(dataset)),
        per_device_train_batch_size=config.batch_size,
        max_length=config.max_length,
        seed=config.seed,
        warmup_steps=float(config.warmup_ratio),  # a float < 1 is a ratio
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        center_rewards_coefficient=config.center_rewards_coefficient,
        **{**common_trainer_args(), "activation_checkpointing": config.gradient_checkpointing},
    )
    return RewardTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=callbacks or [],
    )


class RewardScorer:
    """Scores texts with a trained reward model (higher = preferred)."""

    def __init__(self, path: ModelRef, batch_size: int = 32) -> None:
        self.model, self.tokenizer = load_reward_model(path, train=False)
        self.batch_size = batch_size
        self.device = next(self.model.parameters()).device

    @torch.inference_mode()
    def score(self, texts: Sequence[str]) -> list[float]:
        """Reward of each full text (prompt + completion, ending with eos as in training)."""
        scores: list[float] = []
        limit = getattr(self.model.config, "max_position_embeddings", None)
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            enc = self.tokenizer(
                chunk,
                padding=True,
                truncation=limit is not None,
                max_length=limit,
                return_tensors="pt",
            ).to(self.device)
            logits = self.model(**enc).logits
            scores.extend(logits[:, 0].float().tolist())
        return scores

    def score_completions(
        self, prompts: Sequence[Prompt], completions: Sequence[str | list[dict[str, str]]]
    ) -> list[float]:
        """Reward of each (prompt, completion); chats are rendered with the chat template."""
        texts = [full_text(self.tokenizer, p, c) for p, c in zip(prompts, completions, strict=True)]
        return self.score(texts)
