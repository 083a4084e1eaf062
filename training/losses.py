"""Sequence log-probabilities and the DPO family of losses, as small pure functions.

Used by evaluation (implicit DPO reward, KL to the parent) and by the plain-torch DPO loop the
benchmark compares TRL against. The trainer itself runs TRL's DPOTrainer; a test checks that its
loss on a fixed batch equals `dpo_loss` and the paper's formula.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def completion_logps(
    logits: torch.Tensor, input_ids: torch.Tensor, completion_mask: torch.Tensor
) -> torch.Tensor:
    """Sum of log p(x_t | x_<t) over completion tokens.

    Shapes: logits (B, T, V), input_ids (B, T), completion_mask (B, T) with 1 on completion
    tokens (0 on prompt and padding). Returns (B,).
        logps[b] = sum_{t>=1} completion_mask[b, t] * log_softmax(logits[b, t-1])[input_ids[b, t]]
    Example: a completion of one token with probability 0.5 -> log(0.5) = -0.693.
    """
    labels = input_ids[:, 1:]
    mask = completion_mask[:, 1:].to(logits.dtype)
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    per_token = torch.gather(logp, 2, labels.unsqueeze(-1)).squeeze(-1)
    return (per_token * mask).sum(dim=1)


def batch_logps(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) completion log-probs of a batch from TRL's DataCollatorForPreference.

    The batch stacks B chosen rows then B rejected rows: input_ids (2B, T), attention_mask
    (2B, T), completion_mask (2B, T). Returns two (B,) tensors.
    """
    out = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    )
    logps = completion_logps(out.logits, batch["input_ids"], batch["completion_mask"])
    chosen, rejected = logps.chunk(2, dim=0)
    return chosen, rejected


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
    loss_type: str = "sigmoid",
    chosen_len: torch.Tensor | None = None,
    rejected_len: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair DPO losses and implicit rewards. All inputs (B,); returns three (B,) tensors.

    With h = (log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l)):
        sigmoid (DPO, Rafailov et al. eq. 7): -log sigmoid(beta * h)
        hinge (SLiC):                          max(0, 1 - beta * h)
        ipo (Azar et al. eq. 17, per-token):   (h_avg - 1 / (2 beta))^2, h_avg uses lengths
    Implicit rewards: r_w = beta * (log pi(y_w) - log ref(y_w)), likewise r_l.
    Example: h = 0 gives the sigmoid loss log 2 = 0.693 whatever beta is.
    """
    chosen_ratio = policy_chosen - ref_chosen
    rejected_ratio = policy_rejected - ref_rejected
    h = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * h)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * h)
    elif loss_type == "ipo":
        if chosen_len is None or rejected_len is None:
            raise ValueError("ipo needs chosen_len and rejected_len (completion token counts)")
        h_avg = chosen_ratio / chosen_len.clamp(min=1) - rejected_ratio / rejected_len.clamp(min=1)
        losses = (h_avg - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(
            f"loss_type: the plain loop implements sigmoid, hinge, ipo; got {loss_type!r}"
        )
    return losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()
