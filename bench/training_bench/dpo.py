"""The reward-model and DPO benchmark's own sides: the plain torch DPO loop and TRL's defaults."""

from __future__ import annotations

import random
import time
from typing import Any

from .common import RL_WORKLOAD


def _plain_dpo(model_path: str, pairs: list[dict[str, str]], batch_size: int, lr: float) -> dict:
    """The floor: reference log-probs once, then AdamW on -log sigmoid(beta h), nothing else."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    from training.data import tokenize_pair
    from training.losses import dpo_loss
    from training.models import load_tokenizer

    def batch_logps(model: Any, batch: dict) -> tuple[Any, Any]:
        """Completion log-probs, projecting through the LM head only at completion positions."""
        hidden = model.base_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state[:, :-1]
        mask = batch["completion_mask"][:, 1:].bool()
        labels = batch["input_ids"][:, 1:][mask]
        logp = torch.log_softmax(model.lm_head(hidden[mask]), dim=-1)
        per_token = logp.gather(1, labels.unsqueeze(1)).squeeze(1)
        rows = torch.arange(mask.shape[0]).unsqueeze(1).expand_as(mask)[mask]
        sums = torch.zeros(mask.shape[0], dtype=per_token.dtype).index_add(0, rows, per_token)
        return sums.chunk(2)

    torch.manual_seed(0)
    started = time.perf_counter()
    tok = load_tokenizer(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    examples = [tokenize_pair(tok, p) for p in pairs]
    collate = DataCollatorForPreference(pad_token_id=tok.pad_token_id)
    batches = [collate(examples[i : i + batch_size]) for i in range(0, len(examples), batch_size)]
    model.eval()
    with torch.no_grad():
        refs = [batch_logps(model, b) for b in batches]
    setup = time.perf_counter() - started
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    order = list(range(len(batches)))
    random.Random(0).shuffle(order)
    losses = []
    started = time.perf_counter()
    for step, i in enumerate(order):
        for group in optimizer.param_groups:  # linear decay, as the Trainer's default schedule
            group["lr"] = lr * (1 - step / len(order))
        pc, pr = batch_logps(model, batches[i])
        loss = dpo_loss(pc, pr, refs[i][0], refs[i][1], beta=0.1)[0].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    return {
        "setup_seconds": setup,
        "train_seconds": time.perf_counter() - started,
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }


def _trl_default_args(kind: str, out: str, cpu: bool = False) -> tuple[Any, list[str]]:
    """TRL's config with its own defaults; only what is needed to run here is changed (and, for
    GRPO, the workload: samples per prompt, their length and the KL term, as ours). `cpu`: also
    fp32 and no activation checkpointing, as our CPU defaults."""
    from trl import DPOConfig, GRPOConfig, KTOConfig, RewardConfig, SFTConfig

    cls = {
        "dpo": DPOConfig,
        "rm": RewardConfig,
        "sft": SFTConfig,
        "kto": KTOConfig,
        "grpo": GRPOConfig,
    }[kind]
    base: dict[str, Any] = {"report_to": "none", "save_strategy": "no"}
    # The same work as ours: one epoch (TRL's default is 3; before 2026-11-30 the DPO and
    # reward-model variants left it at 3 and so did 3x the work, docs/benchmarks.md).
    base["num_train_epochs"] = 1
    if kind == "grpo":
        base.update(RL_WORKLOAD)
    if cpu:
        base.update(bf16=False, activation_checkpointing=False)
    changed = [f"{k}={v}" for k, v in base.items()]
    try:
        args = cls(output_dir=out, **base)
    except ValueError:
        args = cls(output_dir=out, use_cpu=True, **base)
        changed.append("use_cpu=True (plain defaults refuse bf16 on this CPU)")
    return args, changed
