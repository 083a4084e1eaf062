import os

from feedback_app.common.tasks import ping


def test_a_real_worker_process_runs_a_task_sent_through_the_configured_broker(
    celery_worker_process,
):
    result = ping.delay().get(timeout=30)
    assert result["pong"] is True
    assert result["pid"] != os.getpid()
    assert "common.ping" in celery_worker_process.log_path.read_text()
