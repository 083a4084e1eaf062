"""schemathesis against the live schema: no 5xx, no response that breaks the schema.

Runs schemathesis' CLI in a subprocess against pytest-django's live server (its pytest
plugin and pytest-django each want to own the test session), authenticated with the token of
an admin member of project A. `positive_data_acceptance` is left out: schema-valid payloads
are still refused by business rules (a ranking must name this task's candidates), by design.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from feedback_app.accounts.tokens import token_create

EXCLUDED = "positive_data_acceptance"


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    transactional_db, live_server, world, monkeypatch, tmp_path
):
    from feedback_app.finetuning import jobs

    monkeypatch.setattr(jobs, "_enqueue", lambda job: None)  # launched jobs stay queued
    token = token_create(user=world.dave, name="schemathesis", expiry_days=0).key
    cli = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(cli), "run", f"{live_server.url}/api/v1/schema/",
            "--url", f"{live_server.url}",
            "--header", f"Authorization: Token {token}",
            "--checks", "all", "--exclude-checks", EXCLUDED,
            "--max-examples", "8", "--seed", "1",
            "--phases", "examples,coverage,fuzzing",
            "--generation-deterministic",
            "--max-time", "75",
            "--request-timeout", "30",
            "--warnings", "off",
            "--report", "junit", "--report-dir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    (tmp_path / "schemathesis.txt").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-15000:] + result.stderr[-3000:]
