"""Artifacts anywhere: models and snapshots through one layer, against a real S3-compatible HTTP
server (moto's server mode on 127.0.0.1): written by one process, read by another; a
half-uploaded artifact (no manifest) is refused; the local folder stays the default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from feedback_app.core.artifacts import (
    ArtifactIncomplete,
    artifact_publish,
    local_folder,
    local_model,
)
from training.artifacts import MANIFEST

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "artifacts"


@pytest.fixture(scope="module")
def s3_server():
    """A real S3-compatible endpoint on a free local port, with a bucket; stopped afterwards."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket=BUCKET)
    yield url
    server.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def s3_settings(s3_server, settings, tmp_path):
    settings.ARTIFACT_STORAGE = f"s3://{BUCKET}/run-{tmp_path.name}"
    settings.S3_ENDPOINT_URL = s3_server
    settings.ARTIFACT_CACHE_DIR = tmp_path / "cache"
    return settings


def _folder(root: Path) -> Path:
    folder = root / "policy-job1"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"n_layer": 2}))
    (folder / "sub" / "weights.bin").write_bytes(os.urandom(300_000))
    return folder


def test_by_default_an_artifact_stays_in_its_local_folder(settings, tmp_path):
    settings.ARTIFACT_STORAGE = ""
    folder = _folder(tmp_path)
    ref = artifact_publish(folder, "models/1/policy-job1")
    assert ref == str(folder) and local_folder(ref) == folder
    assert local_model("some-org/some-model") == "some-org/some-model"  # a hub id untouched


def test_an_artifact_written_by_one_process_is_read_back_by_another(s3_settings, tmp_path):
    folder = _folder(tmp_path)
    ref = artifact_publish(folder, "models/1/policy-job1")
    assert ref == f"{s3_settings.ARTIFACT_STORAGE}/models/1/policy-job1"
    code = (
        "import sys, django; django.setup(); from pathlib import Path; "
        "from feedback_app.core.artifacts import local_folder; "
        "p = local_folder(sys.argv[1]); "
        "w = (p / 'sub' / 'weights.bin').read_bytes().hex()[:64]; "
        "print(w, (p / 'config.json').read_text())"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "feedback_app.settings",
        "ARTIFACT_STORAGE": s3_settings.ARTIFACT_STORAGE,
        "S3_ENDPOINT_URL": s3_settings.S3_ENDPOINT_URL,
        "ARTIFACT_CACHE_DIR": str(tmp_path / "other-worker-cache"),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, ref], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    weights = (folder / "sub" / "weights.bin").read_bytes().hex()[:64]
    assert done.stdout.split(" ", 1) == [weights, (folder / "config.json").read_text() + "\n"]


def test_a_half_uploaded_artifact_is_refused(s3_settings, s3_server, tmp_path):
    import boto3

    folder = _folder(tmp_path)
    ref = artifact_publish(folder, "models/1/half")
    client = boto3.client("s3", endpoint_url=s3_server)
    key = ref.split(f"s3://{BUCKET}/", 1)[1]
    client.delete_object(Bucket=BUCKET, Key=f"{key}/{MANIFEST}")  # as if the upload stopped
    with pytest.raises(ArtifactIncomplete, match="did not finish"):
        local_folder(ref)
    assert not any((tmp_path / "cache").glob("*/config.json"))  # nothing left as if complete


def test_a_file_that_differs_from_the_manifest_is_refused(s3_settings, s3_server, tmp_path):
    import boto3

    ref = artifact_publish(_folder(tmp_path), "models/1/changed")
    key = ref.split(f"s3://{BUCKET}/", 1)[1]
    boto3.client("s3", endpoint_url=s3_server).put_object(
        Bucket=BUCKET, Key=f"{key}/config.json", Body=b"{}"
    )
    with pytest.raises(ArtifactIncomplete, match="config.json"):
        local_folder(ref)


def test_a_snapshot_built_with_object_storage_is_stored_there_and_read_back(
    s3_settings, make_project, alice
):
    from feedback_app.annotation import handout, submit
    from feedback_app.core.models import DatasetSnapshot
    from feedback_app.finetuning.runners.common import read_rows
    from feedback_app.preferences.pairs import PairPolicy
    from feedback_app.preferences.services import snapshot_build

    project = make_project(name="S", k=3, overlap=1, n_tasks=2, annotators=[alice])
    task = handout.task_assign_next(project=project, annotator=alice).task
    ids = sorted(c.pk for c in task.candidates.all())
    submit.ranking_submit(task_id=task.pk, annotator=alice, groups=[[i] for i in ids])
    snap = snapshot_build(project=project, policy=PairPolicy(), test_fraction=0.0, seed=0)
    assert snap.path.startswith("s3://")
    stored = DatasetSnapshot.objects.get(pk=snap.pk)
    rows = read_rows(stored, "train")
    assert rows and {"prompt", "chosen", "rejected"} <= set(rows[0])
