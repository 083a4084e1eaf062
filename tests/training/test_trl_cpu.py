import pytest
import torch
import trl.kernels
import trl.trainer.utils as trl_utils
from trl.kernels import ChunkedLogProbFunction

from training import trl_cpu
from training.config import DPOTrainConfig
from training.dpo import train_dpo
from training.trl_cpu import (
    TRL_PATCHES,
    CpuLogProbs,
    TrlVersionWarning,
    cpu_log_probs,
    trl_patched,
)

ALL = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1")


def _inputs(seed: int, bias: bool) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(37, 16, generator=g, requires_grad=True)
    weight = torch.randn(50, 16, generator=g).mul_(0.5).requires_grad_()
    b = torch.randn(50, generator=g).requires_grad_() if bias else None
    targets = torch.randint(0, 50, (37,), generator=g)
    return hidden, weight, b, targets


def _run(fn, hidden, weight, bias, targets, temperature, softcap, scale):
    """Outputs and the gradients of a loss on the log-probs (DPO's only differentiated output)."""
    out = fn(hidden, weight, bias, targets, temperature, softcap, scale)
    g = torch.Generator().manual_seed(1)
    loss = (out[0] * torch.randn(out[0].shape, generator=g)).sum()
    params = [p for p in (hidden, weight, bias) if p is not None]
    return out, torch.autograd.grad(loss, params)


def _trl(hidden, weight, bias, targets, temperature, softcap, scale):
    return ChunkedLogProbFunction.apply(
        hidden, weight, bias, targets, temperature, 32768, softcap, scale, ALL
    )


def _ours(hidden, weight, bias, targets, temperature, softcap, scale):
    return cpu_log_probs(hidden, weight, bias, targets, temperature, softcap, scale, ALL)


@pytest.mark.parametrize(
    ("bias", "temperature", "softcap", "scale", "block"),
    [(False, 1.0, None, 1.0, 1 << 16), (True, 0.7, None, 1.0, 100), (True, 1.3, 5.0, 0.5, 500)],
)
def test_cpu_log_probs_equal_trls_kernel_outputs_and_gradients(
    monkeypatch, bias, temperature, softcap, scale, block
):
    monkeypatch.setattr(trl_cpu, "_BLOCK_ELEMENTS", block)  # 100: metric blocks of 2 rows
    inputs = _inputs(0, bias)
    theirs, their_grads = _run(_trl, *inputs, temperature, softcap, scale)
    ours, our_grads = _run(_ours, *inputs, temperature, softcap, scale)
    for name, a, b in zip(ALL, ours, theirs, strict=True):
        if name == "is_top1":
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)
    for a, b in zip(our_grads, their_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert ours[0].requires_grad and not ours[1].requires_grad  # DPO only logs the entropy


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("block", [1 << 16, 100])
def test_fused_training_path_equals_trls_kernel(monkeypatch, bias, block):
    monkeypatch.setattr(trl_cpu, "_BLOCK_ELEMENTS", block)
    inputs = _inputs(4, bias)
    metrics = ("log_probs", "entropy", "mean_logits", "is_top1")  # what DPOTrainer asks for
    theirs, their_grads = _run(_trl, *inputs, 1.0, None, 1.0)
    ours, our_grads = _run(
        lambda h, w, b, t, *_: CpuLogProbs.apply(h, w, b, t, 1.0, 32768, None, 1.0, metrics),
        *inputs,
        1.0,
        None,
        1.0,
    )
    assert ours[2] is None  # log_sum_sq_probs was not asked for
    for name, a, b in zip(ALL, ours, theirs, strict=True):
        if name == "is_top1":
            assert torch.equal(a, b)
        elif name in metrics:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)
    for a, b in zip(our_grads, their_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert ours[0].grad_fn.name().endswith("FusedLogProbsBackward")


def test_fused_path_gives_log_sum_sq_probs_too():
    hidden, weight, bias, targets = _inputs(5, True)
    ours = CpuLogProbs.apply(hidden, weight, bias, targets, 1.0, 32768, None, 1.0, ALL)
    theirs = _trl(hidden, weight, bias, targets, 1.0, None, 1.0)
    assert ours[0].grad_fn.name().endswith("FusedLogProbsBackward")
    torch.testing.assert_close(ours[2], theirs[2], rtol=1e-5, atol=1e-5)


def test_top1_counts_a_tie_with_an_earlier_token_as_a_miss_like_trl():
    logits = torch.tensor([[1.0, 1, 0, 0], [1, 1, 0, 0], [0, 2, 0, 2], [0, 0, 0, 3]])
    targets = torch.tensor([1, 0, 1, 2])
    weight = torch.eye(4)  # hidden @ weight.T == logits
    ours = cpu_log_probs(logits, weight, None, targets, 1.0, None, 1.0, ALL)[4]
    theirs = ChunkedLogProbFunction.apply(logits, weight, None, targets, 1.0, 4096, None, 1.0, ALL)
    assert ours.tolist() == theirs[4].tolist() == [False, True, True, False]


def test_inputs_off_the_fp32_cpu_path_go_to_trls_kernel(monkeypatch):
    calls = []

    class Spy:
        @staticmethod
        def apply(*args):
            calls.append(args[0].dtype)
            return ChunkedLogProbFunction.apply(*args)

    monkeypatch.setattr(trl.kernels, "ChunkedLogProbFunction", Spy)
    hidden, weight, _, targets = _inputs(3, False)
    for dtype in (torch.float32, torch.float64):
        CpuLogProbs.apply(hidden.to(dtype), weight.to(dtype), None, targets, 1.0, 32768)
    assert calls == [torch.float64]


def _trl_names():
    return trl_utils._use_triton, trl_utils._ChunkedLogProbFunction


def test_patches_are_scoped_to_the_block_and_nest():
    before = _trl_names()
    assert not before[0](torch.device("cpu"))  # TRL's switch: full path on CPU
    with trl_patched() as patched:
        assert patched == ("compact_lm_head", "cpu_log_probs")
        assert trl_utils._ChunkedLogProbFunction is CpuLogProbs
        assert trl_utils._use_triton(torch.device("cpu"))
        with trl_patched() as inner:
            assert inner and trl_utils._ChunkedLogProbFunction is CpuLogProbs
        assert trl_utils._ChunkedLogProbFunction is CpuLogProbs
    assert _trl_names() == before


def test_a_second_backward_through_the_fused_path_raises_instead_of_being_wrong():
    hidden, weight, _, targets = _inputs(6, False)
    total = CpuLogProbs.apply(hidden, weight, None, targets, 1.0, 32768)[0].sum()
    total.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        total.backward()


def test_only_the_named_patches_are_applied():
    before = _trl_names()
    with trl_patched(["cpu_log_probs"]) as applied:
        assert applied == ("cpu_log_probs",)
        assert trl_utils._ChunkedLogProbFunction is CpuLogProbs
        assert trl_utils._use_triton is before[0]
    with (
        pytest.raises(ValueError, match="speedups: unknown fast_head"),
        trl_patched(["fast_head"]),
    ):
        pass
    assert _trl_names() == before


def test_on_another_trl_version_nothing_is_patched_and_a_warning_says_so(monkeypatch):
    monkeypatch.setattr(trl, "__version__", "1.17.0")  # what the gate reads
    before = _trl_names()
    off = r"CPU speed-ups for TRL are off: trl 1\.17\.0 is not the measured 1\.16\.0"
    with pytest.warns(TrlVersionWarning, match=off), trl_patched() as applied:
        assert applied == ()
        assert _trl_names() == before


def test_train_dpo_on_another_trl_version_runs_trl_untouched_and_warns(
    monkeypatch, tiny_base_model, toy_pairs, tmp_path
):
    monkeypatch.setattr(trl, "__version__", "1.17.0")
    before, seen = _trl_names(), []

    def record_kernel(step, total, metrics):
        seen.append(_trl_names())

    config = DPOTrainConfig(epochs=1, batch_size=4)
    with pytest.warns(TrlVersionWarning, match="trl 1.17.0"):
        result = train_dpo(tiny_base_model, toy_pairs, tmp_path, config, progress=record_kernel)
    assert seen and all(names == before for names in seen)  # TRL's own, at every step
    assert not set(result.metrics["speedups"]) & set(TRL_PATCHES)
