"""What the input checks of issue 9 cost on the common case: bodies and files that are fine.

Times, in this process (no server, no database), the API's JSON parser against DRF's (the depth
walk is the difference), and the JSONL import's decode and check against a bare `json.loads`
of every line (the difference: lines split at "\\n", the depth walk, the storable-value walk of
metadata, the text checks). Prints a table; docs/benchmarks.md records it.

    .venv/bin/python bench/input_checks.py [--repeat 9] [--before 9f041c2]

`--before REV` also times `parse_jsonl` as it was at that git revision (loaded with `git show`),
against today's, on the same files. `--smoke`: tiny inputs, one run each, in a second (tests).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedback_app.settings")

import django  # noqa: E402

django.setup()

from rest_framework import parsers  # noqa: E402

from feedback_app.annotation.importing import check_records, parse_jsonl  # noqa: E402
from feedback_app.api.parsers import JSONParser  # noqa: E402

MIN_RUN_S = 0.05


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of `repeat` runs, in milliseconds (each run repeated to last >= 50 ms).

    The fastest, not the median: on a shared machine the others measure the neighbours."""
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        if time.perf_counter() - start >= MIN_RUN_S:
            break
        loops *= 2
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        runs.append((time.perf_counter() - start) / loops * 1000)
    return min(runs)


def records(n: int) -> list[dict]:
    """Import lines as users send them: text prompt, 4 candidates, a little metadata."""
    return [
        {
            "prompt": f"Question {i}: explain how a heap keeps its order. " * 3,
            "candidates": [f"Answer {j} to question {i}, with some detail. " * 4 for j in range(4)],
            "metadata": {"source": "bench", "tags": ["a", "b"], "scores": {"x": i, "y": 0.5}},
            "id": f"q-{i}",
        }
        for i in range(n)
    ]


def importing_at(rev: str):
    """`feedback_app.annotation.importing` as it was at git revision `rev`."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{rev}:feedback_app/annotation/importing.py"],
        cwd=root, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "importing_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("importing_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["importing_before"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--before", help="git revision to compare parse_jsonl with")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run: no speed")
    args = parser.parse_args()
    global MIN_RUN_S
    repeat, small, large = args.repeat, 1000, 10_000
    if args.smoke:
        repeat, small, large, MIN_RUN_S = 1, 10, 100, 0.0

    ranking = json.dumps({"ranking": [[12], [10, 13], [11]], "rationale": "", "flags": []})
    rows = []
    bodies = [("ranking submit body (70 B)", ranking.encode())]
    for n in (small, large):
        body = json.dumps(records(n)).encode()
        bodies.append((f"import, JSON list of {n:,} ({len(body) / 1e6:.1g} MB)", body))
    for label, body in bodies:
        drf = best_ms(lambda b=body: parsers.JSONParser().parse(io.BytesIO(b)), repeat)
        ours = best_ms(lambda b=body: JSONParser().parse(io.BytesIO(b)), repeat)
        rows.append((f"API parser: {label}", drf, ours))

    for n in (small, large):
        lines = "\n".join(json.dumps(r) for r in records(n)).encode()

        def bare(data: bytes = lines) -> list:
            return [json.loads(line) for line in data.decode("utf-8-sig").splitlines()]

        objects = list(enumerate(bare(), start=1))
        checked = best_ms(lambda o=objects: check_records(o, k=4), repeat)
        decode = best_ms(bare, repeat)
        full = best_ms(lambda d=lines: parse_jsonl(d, k=4), repeat)
        # Before: bare decode + the checks of that time (about check_records minus our walks).
        rows.append((f"JSONL import of {n:,} lines: decode only vs parse_jsonl", decode, full))
        rows.append((f"  of which check_records ({n:,} records)", float("nan"), checked))
        if args.before:
            before = importing_at(args.before)
            old = best_ms(lambda d=lines, m=before: m.parse_jsonl(d, k=4), repeat)
            rows.append((f"  parse_jsonl at {args.before} vs now", old, full))

    print(f"{'case':<62} {'baseline ms':>12} {'ours ms':>9} {'ratio':>6}")
    for label, base, ours in rows:
        ratio = ours / base if base == base else float("nan")
        print(f"{label:<62} {base:>12.3f} {ours:>9.3f} {ratio:>6.2f}")


if __name__ == "__main__":
    main()
