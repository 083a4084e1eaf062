"""``manage.py serve_model [<version id>] [--engine transformers|vllm] [--host H] [--port N]``:
serve a model version over the OpenAI chat-completions protocol with an existing server.

It resolves the version's weights (refused, naming the path, when the folder holds no model)
and replaces itself with the server (`os.execvpe`), so signals and the exit code are the
server's own. Without a version id, `transformers serve` loads any version a request names
(its weights path) and unloads it when idle: the compose `model-server` service runs that.
`--print` shows the command line and exits. Point the playground at it with MODEL_SERVER_URLS.
"""

from __future__ import annotations

import os
import shlex

from django.core.management.base import BaseCommand, CommandError

from feedback_app.common.errors import ServiceError
from feedback_app.core.models import ModelVersion
from feedback_app.finetuning.serving import serve_command_for
from training.serving import ENGINES


class Command(BaseCommand):
    help = (
        "Serve a model version (policy or base) over the OpenAI chat-completions protocol: "
        "`transformers serve` on CPU, or vLLM on a GPU machine. Without a version id, every "
        "version on demand (transformers only)."
    )

    def add_arguments(self, parser):
        parser.add_argument("version_id", nargs="?", type=int, help="the model version to serve")
        parser.add_argument("--engine", choices=ENGINES, default="transformers")
        parser.add_argument(
            "--host", default="127.0.0.1", help="listen address (0.0.0.0 in compose)"
        )
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--device", default="cpu", help="transformers: cpu, cuda:0, auto")
        parser.add_argument(
            "--print", action="store_true", dest="print_only", help="print the command and exit"
        )

    def handle(self, *args, version_id, engine, host, port, device, print_only, **options):
        version = None
        if version_id is not None:
            version = ModelVersion.objects.filter(pk=version_id).first()
            if version is None:
                raise CommandError(f"version: no model version {version_id}")
        try:
            command = serve_command_for(
                version=version, engine=engine, host=host, port=port, device=device
            )
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        if print_only:
            self.stdout.write(shlex.join(command))
            return
        label = version.label if version is not None else "every version, on demand"
        self.stderr.write(f"Serving {label} on http://{host}:{port}/v1 with {engine}")
        self.stderr.flush()
        env = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1"}
        os.execvpe(command[0], command, env)
