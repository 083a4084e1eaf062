"""The divergence detector: a TrainerCallback that stops a run hacking its reward.

Every `every` optimiser steps (and once before the first) it samples one fresh completion per
evaluation prompt from the current policy, scores them with the reward being optimised (the
proxy) and with an independent judge (`guards.independent_judge`), and, when a reference model
is given, estimates KL(policy || reference) in nats per sample from the same samples. When
`guards.divergence` says the proxy kept rising over the window while the judge did not, it
sets `control.should_training_stop` and records why. The curves are kept either way: a bench
can run it with `stop=False` to draw proxy and judge against sqrt(KL).

Sampling uses its own RNG state (`torch.random.fork_rng`), so turning the detector on does
not change the samples the trainer draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from training.config import GenerateConfig
from training.data import Prompt
from training.guards import Decision, IndependentJudge, divergence
from training.models import LoadedModel


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass
class DivergenceDetector:
    """Curves of proxy and judge on fresh samples, and the stop decision (see module doc)."""

    judge: IndependentJudge
    proxy: Callable[[list[Prompt], list[Any]], list[float]]
    prompts: list[Prompt]
    tokenizer: Any
    every: int
    window: int = 3
    min_rise: float = 0.0
    tolerance: float = 0.0
    generate_config: GenerateConfig = field(default_factory=GenerateConfig)
    reference: LoadedModel | None = None
    stop: bool = True  # False: record the curves only
    curve: list[dict[str, float]] = field(default_factory=list)
    decision: Decision = field(default_factory=lambda: Decision(False))
    stopped_at: int | None = None

    @torch.no_grad()
    def evaluate(self, model: Any, step: int) -> dict[str, float]:
        """Score fresh samples of `model` at `step`; append and return the curve point."""
        from training.evaluate import sample_logps
        from training.generate import encode_prompts, generate

        was_training = model.training
        policy = LoadedModel(model=model, tokenizer=self.tokenizer, name="policy")
        try:
            with torch.random.fork_rng(devices=[]):
                out = generate(policy, self.prompts, self.generate_config)
            flat = [(p, s) for p, row in zip(self.prompts, out.samples, strict=True) for s in row]
            prompts = [p for p, _ in flat]
            texts = [s.text for _, s in flat]
            point = {
                "step": float(step),
                "proxy": _mean(self.proxy(prompts, texts)),
                "judge": _mean(self.judge.score(prompts, texts)),
                "length": _mean([s.completion_tokens for _, s in flat]),
            }
            if self.reference is not None:
                encoded, _ = encode_prompts(
                    model, self.tokenizer, self.prompts, self.generate_config.max_new_tokens
                )
                ids = [encoded[i] for i, row in enumerate(out.samples) for _ in row]
                completions = [s.completion_ids for _, s in flat]
                batch = self.generate_config.batch_size
                lp = sample_logps(policy, ids, completions, batch)
                lr = sample_logps(self.reference, ids, completions, batch)
                point["kl"] = max(0.0, _mean([a - b for a, b in zip(lp, lr, strict=True)]))
        finally:
            model.train(was_training)
        self.curve.append(point)
        return point

    def check(self) -> Decision:
        """The rule on the curves so far (the first stop decision is kept)."""
        if self.decision.stop:
            return self.decision
        decision = divergence(
            [p["proxy"] for p in self.curve],
            [p["judge"] for p in self.curve],
            self.window,
            self.min_rise,
            self.tolerance,
        )
        if decision.stop:
            self.decision = decision
            self.stopped_at = int(self.curve[-1]["step"])
        return decision

    def summary(self) -> dict[str, Any]:
        """What the run's metrics record: settings, curves and whether (and why) it stopped."""
        return {
            "judge": self.judge.name,
            "every": self.every,
            "window": self.window,
            "min_rise": self.min_rise,
            "tolerance": self.tolerance,
            "prompts": len(self.prompts),
            "stopped": self.decision.stop and self.stop,
            "diverged": self.decision.stop,
            "reason": self.decision.reason,
            "stopped_at_step": self.stopped_at,
            "curve": list(self.curve),
        }

    def as_callback(self) -> Any:
        """The TrainerCallback. On several ranks (`training.launch`) only rank 0 samples and
        judges; its curve point and stop decision are broadcast, so every rank keeps the same
        curves and stops at the same step (a rank that went on alone would wait in its next
        gradient all-reduce for peers that had left)."""
        from transformers import TrainerCallback

        from training.distributed import broadcast, is_main

        outer = self

        def evaluate_on_rank_0(model: Any, step: int) -> bool:
            point, stop = None, False
            if is_main():
                point = outer.evaluate(model, step)
                stop = outer.check().stop and outer.stop
            shared = broadcast((point, outer.decision, outer.stopped_at, stop))
            if not is_main():
                point, outer.decision, outer.stopped_at, stop = shared
                outer.curve.append(point)
            return stop

        class _Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
                if model is not None and not outer.curve:
                    evaluate_on_rank_0(model, state.global_step)

            def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
                if model is None or state.global_step % outer.every:
                    return
                if evaluate_on_rank_0(model, state.global_step):
                    control.should_training_stop = True

        return _Callback()


__all__ = ["DivergenceDetector"]


def build_detector(
    policy_model: Any,
    rows: Sequence[dict[str, Any]],
    config: Any,
    training_reward: Any,
    judge: Any = None,
    judge_pool: Sequence[Any] = (),
    judge_rows: Sequence[dict[str, Any]] | None = None,
) -> DivergenceDetector:
    """The detector of an online RL run (`_OnlineRLConfig` fields `judge_*`, `divergence_*`).

    `training_reward` is the run's `EnsembleReward`; the judge must be independent of its
    members (`independent_judge` refuses otherwise). Evaluation prompts: `judge_rows` (held
    out, preferably), else the first `judge_prompts` training prompts. The reference for the
    KL estimate is a fresh copy of `policy_model` (the run's start).
    """
    from training.guards import independent_judge
    from training.models import load_causal_lm, load_tokenizer

    judge_obj = independent_judge(training_reward.members, judge, judge_pool)
    source = list(judge_rows) if judge_rows else list(rows)
    return DivergenceDetector(
        judge=judge_obj,
        proxy=training_reward.score,
        prompts=[r["prompt"] for r in source[: config.judge_prompts]],
        tokenizer=load_tokenizer(policy_model, padding_side="left"),
        every=config.judge_every,
        window=config.divergence_window,
        min_rise=config.divergence_min_rise,
        tolerance=config.judge_tolerance,
        generate_config=GenerateConfig(
            num_samples=1,
            max_new_tokens=config.max_completion_length,
            temperature=config.temperature,
            top_p=config.top_p,
            seed=config.seed + 1,
            batch_size=max(config.judge_prompts, 1),
        ),
        reference=load_causal_lm(policy_model),
        stop=config.divergence_stop,
    )


__all__ += ["build_detector"]
