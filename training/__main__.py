"""`python -m training ...`: see training/cli.py."""

import sys

import training  # noqa: F401  (offline defaults before any Hugging Face import)
from training.cli import main

sys.exit(main())
