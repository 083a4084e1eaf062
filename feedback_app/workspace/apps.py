from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    """A project's life: settings, members, invitations, archives. No models of its own: the
    rows it manages (projects, memberships) live in core, which everything points at."""

    name = "feedback_app.workspace"
    label = "workspace"
