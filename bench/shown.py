"""Micro-benchmark of the ranking page's render path: ``shown()`` of a prompt and its candidates.

Run (from the repository root; no database, no server)::

    .venv/bin/python bench/shown.py                 # 7 rounds of 2 000 passes
    .venv/bin/python bench/shown.py --rounds 15 --passes 5000
    .venv/bin/python bench/shown.py --smoke          # runs end to end in a second (tests)

What it does: loads the 30 demo tasks (feedback_app/annotation/demo_data/prompts.jsonl, a prompt
and 4 candidates each, 40-1 500 characters a text) into unsaved Prompt and Candidate rows, renders
them once as the import does, then times what the ranking page calls for one task: the prompt's
``shown()`` and each candidate's ``shown()``, over all 30 tasks in turn. It also times the same
with the stored HTML not trusted (a stale digest or version: the text is rendered on read, from
the in-process memo, as a page does after ``QuerySet.update(text=...)`` until the row is saved).

Prints the median and the best round in µs a page (prompt + 4 candidates). Measures; asserts
nothing. Everything runs in this process on one core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedback_app.settings")


def _pages():
    from feedback_app.annotation.demo import DEMO_FILE
    from feedback_app.annotation.importing import parse_jsonl
    from feedback_app.annotation.models import Candidate, Prompt

    pages = []
    for record in parse_jsonl(DEMO_FILE.read_bytes(), k=4):
        prompt = Prompt(text=record.text, messages=record.messages)
        prompt.render()
        candidates = [Candidate(text=c.text, position=i) for i, c in enumerate(record.candidates)]
        for c in candidates:
            c.render()
        pages.append((prompt, candidates))
    return pages


def _time(pages, passes: int) -> float:
    """µs a page over `passes` pages (cycling through the demo tasks)."""
    n = len(pages)
    start = time.perf_counter()
    for i in range(passes):
        prompt, candidates = pages[i % n]
        prompt.shown()
        for c in candidates:
            c.shown()
    return (time.perf_counter() - start) / passes * 1e6


def _stale(pages):
    """The same rows with the stored HTML no longer trusted (another renderer version)."""
    for prompt, candidates in pages:
        prompt.render_version += 1
        for c in candidates:
            c.render_version += 1
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--passes", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help="1 round of 3 passes: no speed")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.passes = 1, 3

    import django

    django.setup()
    for label, pages in (("stored HTML", _pages()), ("rendered on read", _stale(_pages()))):
        _time(pages, args.passes)  # warm the memo and the caches
        runs = [_time(pages, args.passes) for _ in range(args.rounds)]
        print(
            f"{label:18} median {statistics.median(runs):6.1f} µs/page   "
            f"best {min(runs):6.1f} µs/page   ({args.rounds} x {args.passes} pages)"
        )


if __name__ == "__main__":
    main()
