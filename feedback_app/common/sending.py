"""Send a Celery task by its name: how a lower layer asks for work a higher one defines.

The task's module stands above the caller (the job runner over the job services, the quality
report over the submit path), so the caller names the task instead of importing it.
"""

from __future__ import annotations

from typing import Any

from celery import current_app


def send_by_name(name: str, **options: Any) -> None:
    """Send the task called `name` with Celery's `apply_async` options (args, queue, countdown,
    time_limit...); in eager mode it runs here, as `apply_async` would."""
    app = current_app
    if app.conf.task_always_eager:  # send_task ignores eager mode; apply_async honours it
        app.loader.import_default_modules()  # Celery's autodiscovery registers the task's name
        app.tasks[name].apply_async(**options)
        return
    app.send_task(name, **options)
