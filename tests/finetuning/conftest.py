import pytest

from feedback_app.finetuning import versions


@pytest.fixture(autouse=True)
def _quiet_heartbeat(settings):
    """In-process job tests hold the test transaction; the heartbeat thread must not wait on it."""
    settings.JOB_HEARTBEAT_SECONDS = 600


@pytest.fixture
def loop_project(make_project, alice, tmp_path):
    """A project with one ranked-ready task set and a registered (fake-path) base policy."""
    project = make_project(name="loop", k=3, overlap=1, n_tasks=3, annotators=[alice])
    base = versions.model_register(
        project=project, kind="policy", name="base", weights=str(tmp_path / "base")
    )
    return project, base
