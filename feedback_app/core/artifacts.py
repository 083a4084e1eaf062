"""The one storage layer of models and snapshots: the local folder by default, S3-compatible
object storage when `ARTIFACT_STORAGE=s3://bucket/prefix` is set (`S3_ENDPOINT_URL` for MinIO
and the like; credentials from the standard `AWS_*` variables).

Writers produce a local folder and `artifact_publish` it (with S3: uploaded, files first and
the manifest last; the reference stored on the row is then the `s3://` URI). Readers pass the
stored reference through `local_folder` (or `local_model`, which leaves a hub id alone): a
local path comes back as it is, an `s3://` URI is downloaded once into `ARTIFACT_CACHE_DIR`,
and one whose upload did not finish raises `ArtifactIncomplete`. The work is
`training/artifacts.py`'s (no Django there); this module only reads the settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

from training.artifacts import ArtifactIncomplete, S3Store, download, is_remote

__all__ = ["ArtifactIncomplete", "artifact_publish", "is_remote", "local_folder", "local_model"]


def _store() -> S3Store | None:
    uri = getattr(settings, "ARTIFACT_STORAGE", "") or ""
    if not uri:
        return None
    return S3Store.from_uri(uri, getattr(settings, "S3_ENDPOINT_URL", "") or None)


def artifact_publish(folder: str | os.PathLike, key: str) -> str:
    """Store a written folder as artifact `key` ("models/3/policy-job12"); the reference to
    keep on the row: the folder itself by default, its `s3://` URI with object storage."""
    store = _store()
    if store is None:
        return str(folder)
    return store.upload(folder, key)


def local_folder(ref: str | os.PathLike) -> Path:
    """A local folder holding artifact `ref` (downloaded first if it is in object storage)."""
    if is_remote(ref):
        return download(
            str(ref),
            settings.ARTIFACT_CACHE_DIR,
            endpoint_url=getattr(settings, "S3_ENDPOINT_URL", "") or None,
        )
    return Path(ref)


def local_model(ref: str | os.PathLike) -> str:
    """What transformers loads for a model version's `weights`: a local folder for a stored
    artifact, the reference itself otherwise (a hub id, a local path)."""
    return str(local_folder(ref)) if is_remote(ref) else str(ref)
