"""docker-compose.yml is valid, and every command it runs also runs here without Docker."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
VENV_BIN = Path(sys.executable).parent


def test_compose_has_database_broker_web_and_worker():
    services = COMPOSE["services"]
    assert {"postgres", "redis", "web", "worker", "trainer", "sweeper", "migrate"} <= set(services)
    assert "training" in services["trainer"]["command"]
    assert "training" not in ",".join(services["worker"]["command"])
    assert services["sweeper"]["command"][-1] == "sweep_jobs"
    for name in ("web", "worker", "trainer", "sweeper"):  # a killed process comes back
        assert services[name]["restart"] == "unless-stopped"
    for name in ("web", "worker", "trainer", "sweeper", "migrate"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:")
        assert "SECRET_KEY:?" in env["SECRET_KEY"], "the secret key must be required, not defaulted"
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_keeps_artifacts_in_its_s3_compatible_server():
    """Web, workers and the trainer reach the same bucket: a trainer needs only the database,
    the broker and the bucket (no shared volume)."""
    services = COMPOSE["services"]
    assert "minio" in services["minio"]["image"] and "server" in services["minio"]["command"]
    minio_env = services["minio"]["environment"]
    bucket_job = " ".join(services["minio-bucket"]["entrypoint"])
    assert "mc mb" in bucket_job and "http://minio:9000" in bucket_job
    for name in ("web", "worker", "trainer", "sweeper", "migrate"):
        env, deps = services[name]["environment"], services[name]["depends_on"]
        bucket = env["ARTIFACT_STORAGE"].split(":-", 1)[1].rstrip("}")
        assert bucket.startswith("s3://") and bucket.split("/")[2] in bucket_job
        assert "http://minio:9000" in env["S3_ENDPOINT_URL"]
        assert env["AWS_ACCESS_KEY_ID"] == minio_env["MINIO_ROOT_USER"]
        assert env["AWS_SECRET_ACCESS_KEY"] == minio_env["MINIO_ROOT_PASSWORD"]
        if name != "migrate":
            deps = {**deps, **services["migrate"]["depends_on"]}
        assert deps["minio-bucket"]["condition"] == "service_completed_successfully"


def _local(command: list[str]) -> list[str]:
    """The compose command as it runs here: same program from the venv, localhost ports."""
    program = command[0]
    if program == "python":
        return [sys.executable, *command[1:]]
    return [str(VENV_BIN / program), *command[1:]]


def _start(
    command: list[str], tmp_path: Path, env: dict, name: str
) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.log"
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    return proc, log


@pytest.mark.django_db(transaction=True)
def test_every_compose_command_runs_here_without_docker(tmp_path, unused_tcp_port):
    from django.conf import settings

    from tests.workers import _database_url

    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SECRET_KEY": "compose-check",
        "VAR_DIR": str(settings.VAR_DIR),
    }
    services = COMPOSE["services"]
    migrate = subprocess.run(
        _local(services["migrate"]["command"]), cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr

    port = f"127.0.0.1:{unused_tcp_port}"
    commands = {
        "web": [a.replace("0.0.0.0:8000", port) for a in services["web"]["command"]],
        "worker": services["worker"]["command"],
        "trainer": services["trainer"]["command"],
        "sweeper": services["sweeper"]["command"],
    }
    ready_line = {"worker": "ready.", "trainer": "ready.", "sweeper": "Sweeper ready"}
    started = {name: _start(_local(cmd), tmp_path, env, name) for name, cmd in commands.items()}
    try:
        deadline = time.monotonic() + 90
        ready: set[str] = set()
        while time.monotonic() < deadline and len(ready) < len(started):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://{port}/healthz").status_code == 200:
                    ready.add("web")
            ready |= {n for n, line in ready_line.items() if line in started[n][1].read_text()}
            time.sleep(0.3)
        for name, (_, log) in started.items():
            assert name in ready, f"{name} did not start:\n{log.read_text()[-2000:]}"
        assert_api_answers_long_urls_in_json(f"http://{port}")
    finally:
        for proc, _ in started.values():
            proc.terminate()
            proc.wait(timeout=30)


def assert_api_answers_long_urls_in_json(base: str) -> None:
    """gunicorn's own limit (4 094 by default) would answer this with its HTML page: the
    command line raises it, so the API's JSON 414 answers instead (README, "Limits")."""
    response = httpx.get(f"{base}/api/v1/projects/?q=" + "x" * 6000)
    assert response.status_code == 414, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    assert response.json()["errors"][0]["field"] == "url"


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_make_runs_launcher_serves_the_site_and_its_worker_runs_tasks(tmp_path, unused_tcp_port):
    """bin/run-local is what `make run` ends with: gunicorn, a real worker and the sweeper."""
    from django.conf import settings

    from feedback_app.common.tasks import ping
    from tests.workers import _database_url

    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "VAR_DIR": str(settings.VAR_DIR),
        "PORT": str(unused_tcp_port),
    }
    proc = subprocess.Popen(
        [str(ROOT / "bin" / "run-local")], cwd=ROOT, env=env, start_new_session=True,
        stdout=(tmp_path / "run.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        up = False
        while not up and time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                up = httpx.get(f"http://127.0.0.1:{unused_tcp_port}/healthz").status_code == 200
            time.sleep(0.3)
        assert up, (tmp_path / "run.log").read_text()[-2000:]
        assert_api_answers_long_urls_in_json(f"http://127.0.0.1:{unused_tcp_port}")
        assert ping.delay().get(timeout=60)["pong"] is True
        sweeper_log = Path(settings.VAR_DIR) / "log" / "sweeper.log"
        deadline = time.monotonic() + 30
        while "Sweeper ready" not in (sweeper_log.read_text() if sweeper_log.exists() else ""):
            assert time.monotonic() < deadline, "the sweeper did not start"
            time.sleep(0.3)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def test_no_worker_command_picks_its_own_pool():
    """The pool is chosen in settings, by broker (docs/architecture.md, "Workers and lost
    children"), so compose, `make worker`, `make run` and the tests' workers all use it."""
    commands = [" ".join(s["command"]) for s in COMPOSE["services"].values() if "command" in s]
    commands += [(ROOT / "Makefile").read_text(), (ROOT / "bin" / "run-local").read_text()]
    commands += [(ROOT / "bin" / "workers").read_text()]
    commands += [(ROOT / "tests" / "workers.py").read_text()]
    for text in commands:
        assert "--pool" not in text and "-P " not in text and "max-tasks-per-child" not in text


def test_the_model_server_is_optional_and_the_web_knows_where_it_listens():
    services = COMPOSE["services"]
    server = services["model-server"]
    assert server["profiles"] == ["serving"]  # `docker compose up` alone does not start it
    assert server["command"][:3] == ["python", "manage.py", "serve_model"]
    url = services["web"]["environment"]["MODEL_SERVER_URLS"]
    port = server["command"][server["command"].index("--port") + 1]
    assert f"http://model-server:{port}/v1" in url


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_the_model_server_command_serves_a_version_on_demand_here(tmp_path, tiny_base_model):
    """The compose `model-server` command, run here: `transformers serve` with no model loads
    the one a request names (a version's weights) and answers the OpenAI protocol."""
    from tests.model_server import free_port, stop_group, wait_healthy
    from tests.workers import _database_url
    from training.serving import chat_answer

    port = free_port()
    command = [
        str(port) if a == "8001" else "127.0.0.1" if a == "0.0.0.0" else a
        for a in _local(COMPOSE["services"]["model-server"]["command"])
    ]
    env = {**os.environ, "DATABASE_URL": _database_url(), "OMP_NUM_THREADS": "1"}
    log = tmp_path / "model-server.log"
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_healthy(proc, port)
        answer = chat_answer(
            base_url=f"http://127.0.0.1:{port}/v1", model=tiny_base_model, prompt="Hi",
            max_tokens=3, timeout=120,
        )  # fmt: skip
        assert answer.tokens > 0, log.read_text()[-2000:]
    finally:
        stop_group(proc)


def _readme_https_env() -> dict[str, str]:
    """The variables of README's "Behind HTTPS" block, as a shell would set them."""
    import re
    import secrets
    import shlex

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Behind HTTPS", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    env: dict[str, str] = {}
    for line in block.splitlines():
        if line.startswith("export SECRET_KEY=$(python3 "):  # generated when run
            env["SECRET_KEY"] = secrets.token_urlsafe(50)
            continue
        words = shlex.split(line)
        assert words and words[0] == "export", line
        for word in words[1:]:
            name, value = word.split("=", 1)
            env[name] = value
    assert "SECRET_KEY" in env
    return env


def _bare_env(tmp_path: Path) -> dict[str, str]:
    """Nothing of this shell's settings (nor the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE)."""
    return {"PATH": os.environ["PATH"], "HF_HUB_OFFLINE": "1", "VAR_DIR": str(tmp_path)}


def test_check_deploy_is_clean_under_the_readme_production_settings(tmp_path):
    """`manage.py check --deploy` under README's HTTPS settings: no warning, no error."""
    env = _bare_env(tmp_path) | _readme_https_env()
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_check_deploy_warns_without_them(tmp_path):
    """The same check fails on the embedded defaults: the test above proves the settings."""
    env = _bare_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout
