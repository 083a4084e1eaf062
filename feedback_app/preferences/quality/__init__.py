"""Quality figures as plain functions on plain data: agreement, reliability, leaderboard, review.

No Django here (an import-linter contract says so): the worker that refreshes the figures reads
rows, turns them into the dataclasses of `judgements`, and calls these functions; tests and
`bench/quality.py` call them on simulated data. Definitions: docs/quality.md.
"""
