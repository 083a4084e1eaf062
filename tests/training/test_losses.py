import contextlib
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from training.config import DPOTrainConfig
from training.dpo import build_dpo_trainer
from training.losses import completion_logps, dpo_loss
from training.trl_cpu import trl_patched


def test_completion_logps_sums_only_masked_next_token_log_probs():
    # Vocabulary of 2; position t's logits predict token t+1.
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0], [0.0, 0.0]]])  # (1, 3, 2)
    input_ids = torch.tensor([[1, 0, 1]])
    mask = torch.tensor([[0, 1, 1]])  # completion = tokens 1 and 2
    # p(x1=0 | x0) = 0.5; p(x2=1 | x0, x1) = 1/4.
    expected = math.log(0.5) + math.log(0.25)
    assert completion_logps(logits, input_ids, mask).item() == pytest.approx(expected)
    prompt_only = torch.tensor([[1, 0, 0]])
    assert completion_logps(logits, input_ids, prompt_only).item() == 0.0


def test_sigmoid_dpo_loss_matches_the_paper_formula():
    pc, pr = torch.tensor([-5.0, -7.0]), torch.tensor([-6.0, -6.5])
    rc, rr = torch.tensor([-5.5, -7.2]), torch.tensor([-5.8, -6.0])
    beta = 0.3
    losses, chosen_r, rejected_r = dpo_loss(pc, pr, rc, rr, beta)
    for i in range(2):
        h = (pc[i] - rc[i]) - (pr[i] - rr[i])
        assert losses[i].item() == pytest.approx(-math.log(1 / (1 + math.exp(-beta * h.item()))))
    assert chosen_r.tolist() == pytest.approx((beta * (pc - rc)).tolist())
    assert rejected_r.tolist() == pytest.approx((beta * (pr - rr)).tolist())


def test_equal_policy_and_reference_give_log_two():
    x = torch.tensor([-3.0, -9.0])
    losses, _, _ = dpo_loss(x, x + 1, x, x + 1, beta=5.0)
    assert losses.tolist() == pytest.approx([math.log(2)] * 2)


def test_ipo_and_hinge_losses_follow_their_definitions():
    pc, pr, rc, rr = (torch.tensor([v]) for v in (-4.0, -6.0, -5.0, -5.0))
    hinge, _, _ = dpo_loss(pc, pr, rc, rr, 0.5, "hinge")
    assert hinge.item() == pytest.approx(max(0.0, 1 - 0.5 * 2.0))
    ipo, _, _ = dpo_loss(pc, pr, rc, rr, 0.5, "ipo", torch.tensor([2.0]), torch.tensor([4.0]))
    assert ipo.item() == pytest.approx((1.0 / 2 - (-1.0) / 4 - 1 / (2 * 0.5)) ** 2)


def _paper_logp(model, tokenizer, prompt: str, completion: str) -> float:
    """log pi(completion | prompt), token by token, written independently of the library."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    full = tokenizer(prompt + completion + tokenizer.eos_token)["input_ids"]
    assert full[: len(prompt_ids)] == prompt_ids
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([full])).logits[0]
    total = 0.0
    for t in range(len(prompt_ids), len(full)):
        total += F.log_softmax(logits[t - 1], dim=-1)[full[t]].item()
    return total


@pytest.mark.parametrize("compact", [True, False], ids=["compact-lm-head", "trl-cpu-default"])
def test_dpo_trainer_loss_on_a_fixed_batch_equals_the_paper_formula(
    tiny_base_model, toy_pairs, tmp_path, compact
):
    beta = 0.25
    config = DPOTrainConfig(beta=beta, batch_size=4, precompute_ref_log_probs=True)
    with trl_patched() if compact else contextlib.nullcontext():
        trainer = build_dpo_trainer(tiny_base_model, toy_pairs[:4], tmp_path, config)
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
        generator = torch.Generator().manual_seed(0)
        # Move the policy away from the reference so the loss is not trivially log 2.
        with torch.no_grad():
            for p in trainer.model.parameters():
                p.add_(0.02 * torch.randn(p.shape, generator=generator))
        trainer.model.eval()
        loss = trainer.compute_loss(trainer.model, batch).item()

    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    reference = AutoModelForCausalLM.from_pretrained(tiny_base_model).eval()
    policy = trainer.model
    expected, ref_chosen = [], []
    for pair in toy_pairs[:4]:
        pc = _paper_logp(policy, tokenizer, pair["prompt"], pair["chosen"])
        pr = _paper_logp(policy, tokenizer, pair["prompt"], pair["rejected"])
        rc = _paper_logp(reference, tokenizer, pair["prompt"], pair["chosen"])
        rr = _paper_logp(reference, tokenizer, pair["prompt"], pair["rejected"])
        ref_chosen.append(rc)
        h = (pc - rc) - (pr - rr)
        expected.append(math.log1p(math.exp(-beta * h)))  # -log sigmoid(beta h)
    assert batch["ref_chosen_logps"].tolist() == pytest.approx(ref_chosen, abs=1e-4)
    assert loss == pytest.approx(sum(expected) / 4, abs=1e-5)
    assert abs(loss - math.log(2)) > 1e-3
