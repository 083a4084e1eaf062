"""One runner a job kind, a module a workflow: read rows -> call `training/` -> write rows.

Called in a worker. Each takes the Job and its JobReporter and returns the job's outputs;
`kinds.py` says which kind each runs (a training stage's runner: `training.stage_runner`). The
`training` modules that load torch and transformers are imported inside the runners that need
them (a stage's train function when it runs), so the web process, which imports this package
through the registry, never loads them; that is the only reason for an import inside a function.
"""

from .archive import run_import_archive
from .base_model import run_build_base
from .datasets import run_build_dataset
from .evaluation import policy_evaluate, run_evaluate, run_promote
from .generation import run_generate
from .judging import run_judge_round
from .review import run_review_scores
from .training import run_stage, run_train_dpo, run_train_reward, stage_runner

__all__ = [
    "policy_evaluate",
    "run_build_base",
    "run_build_dataset",
    "run_evaluate",
    "run_generate",
    "run_import_archive",
    "run_judge_round",
    "run_promote",
    "run_review_scores",
    "run_stage",
    "run_train_dpo",
    "run_train_reward",
    "stage_runner",
]
