"""Command line: `python -m training COMMAND`: bootstrap, ship-base, generate, train-*, evaluate.

Training commands: one `train-<stage>` a row of the stage table (training/stages.py): today
train-reward, train-dpo, train-sft, train-kto, train-grpo, train-rloo, train-ensemble,
train-best_of_n, train-online_dpo (TRL has no PPO any more: train-grpo runs PPO's clipped
objective with a group baseline instead).

Settings come from `--config file.json` (a dict of config fields) and/or repeated
`--set field=value` (value parsed as JSON, else kept as a string), validated by the same config
dataclasses the library uses. A training command starts from the same device defaults as the
app's jobs (`--device`, default auto: the device torch sees), then the file, then `--set`.
Pairs, SFT rows, KTO rows and prompts are JSONL files. A progress bar goes to stderr; the
result (metrics, paths) is printed to stdout as JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

from training.config import BootstrapConfig, ConfigError, EvalConfig, GenerateConfig
from training.data import PairError, read_jsonl, write_jsonl
from training.env import device_kind
from training.progress import TqdmProgress
from training.shipped import SHIPPED_DIR
from training.stages import DEVICES, PROMPTS, ROWS_FILES, Stage, device_for, stage_list


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _config(cls: type, args: argparse.Namespace, base: dict[str, Any] | None = None) -> Any:
    data: dict[str, Any] = dict(base or {})
    if args.config:
        data.update(json.loads(Path(args.config).read_text()))
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"{item}: --set expects field=value")
        data[key.strip()] = _value(value)
    return cls.from_dict(data)


def _prompts(path: str) -> list[Any]:
    """A JSONL of prompts: each line a string, a message list, or {"prompt": ...}."""
    rows = read_jsonl(path)
    return [row["prompt"] if isinstance(row, dict) else row for row in rows]


def _print(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, indent=2, default=str))


def cmd_bootstrap(args: argparse.Namespace) -> int:
    base = BootstrapConfig.tiny().to_dict() if args.tiny else None
    config = _config(BootstrapConfig, args, base)
    from training.bootstrap import bootstrap_base_model

    bar = TqdmProgress("pretraining")
    try:
        result = bootstrap_base_model(args.out, config, progress=bar)
    finally:
        bar.close()
    _print(
        {
            "output_dir": result.output_dir,
            "cached": result.cached,
            "stopped": result.stopped,
            "metrics": result.metrics,
        }
    )
    return 0


def cmd_ship_base(args: argparse.Namespace) -> int:
    """Pretrain the default base model from scratch, single-threaded, and write the shipped copy."""
    import tempfile

    import torch

    from training import shipped
    from training.bootstrap import bootstrap_base_model

    torch.set_num_threads(1)  # one order of float sums: the same bytes on every run
    bar = TqdmProgress("pretraining")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            result = bootstrap_base_model(tmp, BootstrapConfig(), progress=bar, use_shipped=False)
        finally:
            bar.close()
        hashes = shipped.write_shipped(Path(result.output_dir), Path(args.out))
    _print({"out": args.out, "sha256": hashes, "metrics": result.metrics})
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    config = _config(GenerateConfig, args)
    from training.generate import generate

    prompts = _prompts(args.prompts)
    bar = TqdmProgress("generating")
    try:
        result = generate(args.model, prompts, config, progress=bar)
    finally:
        bar.close()
    payload = result.to_dict()
    if args.out:
        rows = [
            {
                "prompt": p,
                "samples": [{k: v for k, v in s.items() if k != "completion_ids"} for s in row],
            }
            for p, row in zip(prompts, payload["samples"], strict=True)
        ]
        write_jsonl(args.out, rows)
        payload.pop("samples")
        payload["output"] = args.out
    _print(payload)
    return 0


def cmd_train(stage: Stage, args: argparse.Namespace) -> int:
    """Any training stage: the device's defaults, then --config and --set over them."""
    device = device_for(device_kind() if args.device == "auto" else args.device)
    config = _config(stage.config, args, stage.defaults(device))
    train = stage.train_function()
    inputs = []
    for kind in stage.inputs:
        rows = read_jsonl(getattr(args, kind))
        if kind == PROMPTS:
            rows = [row if isinstance(row, dict) else {"prompt": row} for row in rows]
        inputs.append(rows)
    models = [getattr(args, stage.start)] + ([args.reward_model] if stage.reward_model else [])
    bar = TqdmProgress(stage.name)
    try:
        result = train(*models, *inputs, args.out, config, progress=bar)
    finally:
        bar.close()
    _print({"output_dir": result.output_dir, "stopped": result.stopped, "metrics": result.metrics})
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    config = _config(EvalConfig, args)
    from training import evaluate

    out: dict[str, Any] = {}
    if args.pairs and args.reward_model:
        out["reward_model"] = evaluate.preference_accuracy_reward(
            args.reward_model, read_jsonl(args.pairs)
        )
    if args.pairs and args.policy and args.reference:
        out["policy"] = evaluate.preference_accuracy_policy(
            args.policy,
            args.reference,
            read_jsonl(args.pairs),
            beta=config.beta,
            max_length=config.max_length,
        )
    if args.prompts and args.policy and args.reference and args.judge:
        bar = TqdmProgress("comparing")
        try:
            result = evaluate.compare_policies(
                args.policy,
                args.reference,
                _prompts(args.prompts),
                judge=args.judge,
                config=config,
                progress=bar,
            )
        finally:
            bar.close()
        out["comparison"] = {k: v for k, v in result.items() if not isinstance(v, list)}
    if not out:
        raise ConfigError(
            "evaluate: give --pairs with --reward-model and/or --policy --reference, "
            "or --prompts --policy --reference --judge"
        )
    _print(out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="JSON file with config fields")
        p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override one field")
        p.set_defaults(handler=handler)
        return p

    p = add("bootstrap", cmd_bootstrap, "build the small offline base model (cached)")
    p.add_argument("--out", default=".cache/bootstrap", help="cache directory")
    p.add_argument("--tiny", action="store_true", help="start from the seconds-fast test config")

    p = sub.add_parser(
        "ship-base", help="rebuild the shipped default base model (prints its sha256 to record)"
    )
    p.add_argument("--out", default=str(SHIPPED_DIR), help="where to write it")
    p.set_defaults(handler=cmd_ship_base)

    p = add("generate", cmd_generate, "sample K completions per prompt")
    p.add_argument("--model", required=True, help="hub id or local directory")
    p.add_argument("--prompts", required=True, help="JSONL of prompts")
    p.add_argument("--out", help="write samples here as JSONL instead of stdout")

    for stage in stage_list():
        p = add(stage.command, functools.partial(cmd_train, stage), stage.help)
        p.add_argument(f"--{stage.start}", required=True)
        if stage.reward_model:
            p.add_argument(
                "--reward-model", required=True,
                help="directory saved by train-reward (or train-ensemble: an ensemble)",
            )  # fmt: skip
        for kind in stage.inputs:
            flag, what = ROWS_FILES[kind]
            p.add_argument(flag, dest=kind, required=True, help=what)
        p.add_argument("--out", required=True)
        p.add_argument(
            "--device", choices=("auto", *DEVICES), default="auto",
            help="whose defaults to start from (training/stages.py, DEVICE_DEFAULTS)",
        )  # fmt: skip

    p = add("evaluate", cmd_evaluate, "pair accuracy, win rate and KL")
    p.add_argument("--pairs", help="held-out JSONL pairs")
    p.add_argument("--reward-model")
    p.add_argument("--policy")
    p.add_argument("--reference", help="the parent / reference policy")
    p.add_argument("--prompts", help="JSONL prompts for win rate and KL")
    p.add_argument("--judge", help="reward model directory judging the win rate")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, PairError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
