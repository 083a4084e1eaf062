"""Celery tasks shared by every app."""

import os
import socket

from celery import shared_task


@shared_task(name="common.ping")
def ping() -> dict:
    """Answer from a worker: proves the broker and a worker process are up (used by /healthz)."""
    return {"pong": True, "host": socket.gethostname(), "pid": os.getpid()}
