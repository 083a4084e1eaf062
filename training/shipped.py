"""The default base model, shipped with the code so that a first run pretrains nothing.

`training/shipped/base-default/` holds what `bootstrap_base_model(BootstrapConfig())` builds
(tokenizer, GPT-2 config, generation config, the build's manifest), with the weights stored as
float16 safetensors: half the bytes of float32 (about 5 MB), and the held-out perplexity of the
round trip matches the float32 build's (docs/benchmarks.md, "First run"). Installing it casts
the weights back to float32 into the cache directory the build would have used, so everything
downstream (generation, the trainers) sees the same kind of directory as after a build.

Every shipped file's sha256 is recorded below; `install_shipped` refuses a directory whose
files do not match (a corrupted checkout, a hand-edited weight file). Rebuild it with
`python -m training ship-base` (single-threaded, so the float sums are in a fixed order), which
prints the new hashes to paste into `SHIPPED_SHA256`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from training.config import BootstrapConfig

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped" / "base-default"
WEIGHTS = "model.safetensors"
# The files of SHIPPED_DIR and their sha256, as `python -m training ship-base` wrote them.
SHIPPED_SHA256: dict[str, str] = {
    "bootstrap.json": "8e62828b28c620cb17e523386db9a4f53e0355ea9afc5031163294400e80eeaf",
    "chat_template.jinja": "f91864928fccff928b3068ca784db6275e655e400ccbb28f61d92c0090caf3b3",
    "config.json": "1eaf1066341afd1144a2a56aca9f26bc540b327d9f30858cbbc024d3d0838be0",
    "generation_config.json": "8f907555fea9fdd48337f81165af69f0ac332bae8da46d3ddde6dfe054369ce7",
    "model.safetensors": "a9c24afd2c2592d13617f69dc889ac60018d3dfcd4c3bb36304f43c7e60658b1",
    "tokenizer.json": "daee517ed9ad5ef8e4bd7133068fd0b583a5b9ed714850a21a8d4d8881364946",
    "tokenizer_config.json": "8e368e2fa3545fbc2dc6549ced151a70b59f3779ed8ee12bb8b9ddc1a23343ea",
    "training_config.json": "88916e727ff5e325623bce0ce32aaefddc304c4823669a2f84bf8a8fb896e91b",
}


class ShippedModelError(RuntimeError):
    """The shipped model's files are missing or do not match their recorded hashes."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shipped_for(config: BootstrapConfig) -> bool:
    """Whether `config` is the one the shipped model was built with (the default)."""
    return config.to_dict() == BootstrapConfig().to_dict()


def verify(directory: Path = SHIPPED_DIR, expected: dict[str, str] | None = None) -> None:
    """Raise ShippedModelError unless every recorded file exists with its recorded sha256."""
    expected = SHIPPED_SHA256 if expected is None else expected
    if not expected:
        raise ShippedModelError("no shipped model is recorded (SHIPPED_SHA256 is empty)")
    for name, want in sorted(expected.items()):
        path = directory / name
        if not path.is_file():
            raise ShippedModelError(f"{path}: missing")
        got = sha256_of(path)
        if got != want:
            raise ShippedModelError(f"{path}: sha256 {got}, expected {want}")


def install_shipped(
    final: Path,
    directory: Path = SHIPPED_DIR,
    expected: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Verify the shipped files, then write them to `final` with float32 weights.

    Returns the build's manifest (metrics and history), marked `shipped`. Written beside and
    renamed, as a build is, so a crash leaves no half-installed cache entry.
    """
    import torch
    from safetensors.torch import load_file, save_file

    verify(directory, expected)
    tmp = final.parent / f".{final.name}.shipped.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(directory, tmp)
    weights = load_file(str(directory / WEIGHTS))
    save_file(
        {name: tensor.to(torch.float32).contiguous() for name, tensor in weights.items()},
        str(tmp / WEIGHTS),
        metadata={"format": "pt"},
    )
    manifest_path = tmp / "bootstrap.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["shipped"] = True
    manifest["metrics"]["cache_key"] = final.name  # this install's key (library versions)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return manifest


def write_shipped(built: Path, dest: Path) -> dict[str, str]:
    """Copy a complete build from `built` to `dest` with float16 weights; return the hashes."""
    import torch
    from safetensors.torch import load_file, save_file

    manifest = json.loads((built / "bootstrap.json").read_text())
    if not manifest.get("complete"):
        raise ShippedModelError(f"{built}: not a complete build")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for path in sorted(built.iterdir()):
        if path.is_file() and path.name not in (WEIGHTS, "metrics.json"):
            shutil.copy(path, dest / path.name)
    weights = load_file(str(built / WEIGHTS))
    save_file(
        {name: tensor.to(torch.float16).contiguous() for name, tensor in weights.items()},
        str(dest / WEIGHTS),
        metadata={"format": "pt"},
    )
    return {path.name: sha256_of(path) for path in sorted(dest.iterdir()) if path.is_file()}
