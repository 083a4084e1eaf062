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
    assert {"postgres", "redis", "web", "worker", "migrate"} <= set(services)
    for name in ("web", "worker", "migrate"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:")
        assert "SECRET_KEY:?" in env["SECRET_KEY"], "the secret key must be required, not defaulted"
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def _local(command: list[str]) -> list[str]:
    """The compose command as it runs here: same program from the venv, localhost ports."""
    program = command[0]
    if program == "python":
        return [sys.executable, *command[1:]]
    return [str(VENV_BIN / program), *command[1:]]


def _start(command: list[str], tmp_path: Path, env: dict) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{Path(command[0]).name}.log"
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    return proc, log


@pytest.mark.django_db(transaction=True)
def test_compose_migrate_web_and_worker_commands_run_here(tmp_path, unused_tcp_port):
    from django.conf import settings

    from tests.integration.conftest import _database_url

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

    web_cmd = [
        a.replace("0.0.0.0:8000", f"127.0.0.1:{unused_tcp_port}")
        for a in services["web"]["command"]
    ]
    web, web_log = _start(_local(web_cmd), tmp_path, env)
    worker, worker_log = _start(_local(services["worker"]["command"]), tmp_path, env)
    try:
        deadline = time.monotonic() + 60
        healthy = ready = False
        while time.monotonic() < deadline and not (healthy and ready):
            with contextlib.suppress(httpx.TransportError):
                healthy = (
                    httpx.get(f"http://127.0.0.1:{unused_tcp_port}/healthz").status_code == 200
                )
            ready = "ready." in worker_log.read_text()
            time.sleep(0.3)
        assert healthy, web_log.read_text()[-2000:]
        assert ready, worker_log.read_text()[-2000:]
    finally:
        for proc in (web, worker):
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
