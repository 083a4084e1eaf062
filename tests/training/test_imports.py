import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHECK = """
import json, os, sys
import training
import training.bootstrap, training.cli, training.config, training.data, training.dpo
import training.evaluate, training.experiment, training.generate, training.losses, training.reward
import training.kto, training.online_rl, training.sft
import training.engines, training.launch, training.profile, training.rank
django = sorted(m for m in sys.modules if m == "django" or m.startswith("django."))
keys = ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"]
print(json.dumps({"django": django, "env": {k: os.environ.get(k) for k in keys}}))
"""


def test_training_imports_without_django_and_sets_offline_defaults():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, check=True, cwd=REPO
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["django"] == []
    assert set(result["env"].values()) == {"1"}


def test_offline_defaults_do_not_override_an_explicit_choice():
    env = {**os.environ, "HF_HUB_OFFLINE": "0"}
    code = "import os, training; print(os.environ['HF_HUB_OFFLINE'])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert out.stdout.strip() == "0"
