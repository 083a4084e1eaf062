"""Everything the feedback loop does with models: bootstrap, generate, reward model, DPO, evaluate.

Pure library: no Django import, no prints, no network. Importing this package sets offline-safe
defaults for the Hugging Face libraries (see `training.env`) before any of them is imported, so a
caller that imports `training` first never reaches a model hub by accident. Heavy modules (torch,
transformers, trl) are imported by the submodules that need them, not here.
"""

from training.env import apply_offline_defaults

apply_offline_defaults()

__all__ = ["apply_offline_defaults"]
