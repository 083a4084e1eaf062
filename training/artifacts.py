"""Artifacts (model folders, dataset snapshots) in a local folder or S3-compatible storage.

A stored artifact is a folder. Its reference is a local path (the default: nothing moves) or an
`s3://bucket/prefix/key` URI when object storage is configured. Writing to S3 uploads every
file first and the manifest (`MANIFEST`: each file's size and sha256) last; a reader requires
the manifest and checks every file against it, so an artifact whose upload stopped half way is
refused (`ArtifactIncomplete`), never read as complete. Readers download into a local cache
folder (transformers loads folders) that gets its own completion marker only after every file
checked out, so a download that stopped half way is done again.

The client is boto3 (AWS's own SDK: any S3-compatible server through `endpoint_url`, the
standard credential chain from `AWS_*` variables, multipart uploads and retries built in).
No Django here: workers, the CLI and tests use it directly; the app wraps it with its settings
(`feedback_app/core/artifacts.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "_artifact.json"  # written last on upload; its presence means complete
CACHE_MARKER = ".complete"  # in a cache folder: every file downloaded and checked
SCHEME = "s3://"


class ArtifactIncomplete(RuntimeError):
    """The artifact has no manifest (its upload did not finish) or a file does not match it."""


def is_remote(ref: str | os.PathLike) -> bool:
    return str(ref).startswith(SCHEME)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_of(folder: Path) -> dict[str, Any]:
    """Every file under `folder` (relative path -> size, sha256), the cache marker left out."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel in (MANIFEST, CACHE_MARKER):
            continue
        files[rel] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    return {"version": 1, "files": files}


@dataclass(frozen=True)
class S3Store:
    """Artifacts under `s3://bucket/prefix/`; `endpoint_url` for MinIO and the like."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None

    @classmethod
    def from_uri(cls, uri: str, endpoint_url: str | None = None) -> S3Store:
        if not is_remote(uri):
            raise ValueError(f"ARTIFACT_STORAGE: not an s3:// URI: {uri!r}")
        bucket, _, prefix = uri[len(SCHEME) :].partition("/")
        if not bucket:
            raise ValueError(f"ARTIFACT_STORAGE: no bucket in {uri!r}")
        return cls(bucket, prefix.strip("/"), endpoint_url or None)

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url)

    def uri(self, key: str) -> str:
        path = "/".join(p for p in (self.prefix, key.strip("/")) if p)
        return f"{SCHEME}{self.bucket}/{path}"

    def upload(self, folder: str | os.PathLike, key: str) -> str:
        """Upload `folder` as artifact `key`: files first, the manifest last; its URI."""
        folder = Path(folder)
        manifest = manifest_of(folder)
        client = self.client()
        bucket, base = _split(self.uri(key))
        for rel in manifest["files"]:
            client.upload_file(str(folder / rel), bucket, f"{base}/{rel}")
        body = json.dumps(manifest, sort_keys=True).encode()
        client.put_object(Bucket=bucket, Key=f"{base}/{MANIFEST}", Body=body)
        return self.uri(key)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len(SCHEME) :].partition("/")
    return bucket, key.strip("/")


def download(uri: str, cache_dir: str | os.PathLike, *, endpoint_url: str | None = None) -> Path:
    """The local folder of artifact `uri`, downloaded into `cache_dir` unless already there.

    Raises ArtifactIncomplete when the manifest is missing (the upload never finished) or a
    file's size or sha256 differs from it.
    """
    import boto3
    from botocore.exceptions import ClientError

    bucket, base = _split(uri)
    target = Path(cache_dir) / hashlib.sha256(uri.encode()).hexdigest()[:32]
    if (target / CACHE_MARKER).exists():
        return target
    client = boto3.client("s3", endpoint_url=endpoint_url)
    try:
        raw = client.get_object(Bucket=bucket, Key=f"{base}/{MANIFEST}")["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise ArtifactIncomplete(
                f"{uri}: no {MANIFEST}; its upload did not finish, so it is not read"
            ) from exc
        raise
    manifest = json.loads(raw)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".dl-", dir=cache_dir))
    try:
        for rel, info in manifest["files"].items():
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                client.download_file(bucket, f"{base}/{rel}", str(dest))
            except ClientError as exc:
                raise ArtifactIncomplete(f"{uri}: {rel} is missing") from exc
            if dest.stat().st_size != info["size"] or _sha256(dest) != info["sha256"]:
                raise ArtifactIncomplete(f"{uri}: {rel} does not match its manifest")
        (tmp / CACHE_MARKER).write_text(json.dumps(manifest, sort_keys=True))
        if target.exists():  # a stale partial copy from an earlier try
            shutil.rmtree(target, ignore_errors=True)
        try:
            tmp.rename(target)
        except OSError:  # another process finished the same download first
            if not (target / CACHE_MARKER).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
