"""Users the demo and the simulation make are stored as Django's create_user stores them (NFKC),
so the login form, which NFKC-normalises what is typed, finds them."""

import re
import unicodedata

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UsernameField
from django.core.management import CommandError, call_command
from django.test import Client

from feedback_app.annotation import demo
from feedback_app.annotation.models import Ranking
from feedback_app.core.models import Membership
from feedback_app.finetuning import demo as loop_demo

pytestmark = pytest.mark.django_db

FULL_WIDTH = "ａｎｎｏ-1"  # full-width letters: NFKC makes them "anno-1"


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def full_width_annotator(monkeypatch):
    """The demo's annotators, named as someone could have named them."""
    monkeypatch.setattr(demo, "ANNOTATORS", (FULL_WIDTH,))


def _login_through_the_form(username: str, password: str) -> Client:
    """Sign in as a person does: the login page, its CSRF token, the form posted."""
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        "/accounts/login/",
        {"username": username, "password": password, "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302, "the login form refused the credentials"
    return client


def test_demo_user_given_a_name_not_nfkc_normalised_logs_in_through_the_login_form(
    full_width_annotator,
):
    result = demo.demo_bootstrap(password="pw", reset_passwords=False)
    user = get_user_model().objects.get(memberships__project=result.project, is_staff=False)
    for typed in (FULL_WIDTH, "anno-1"):
        client = _login_through_the_form(typed, "pw")
        assert client.session["_auth_user_id"] == str(user.pk)
    assert user.username == unicodedata.normalize("NFKC", FULL_WIDTH) == "anno-1"


def test_demo_run_again_finds_its_users_and_the_loop_demo_adds_them(full_width_annotator, tmp_path):
    demo.demo_bootstrap(password="pw", reset_passwords=False)
    demo.demo_bootstrap(password="new", reset_passwords=True)
    users = get_user_model().objects
    assert users.filter(is_staff=False).count() == 1
    assert users.get(username="anno-1").check_password("new")
    loop = loop_demo.loop_demo_bootstrap(base_weights=str(tmp_path))
    roles = set(loop.project.memberships.values_list("user__username", "role"))
    assert roles == {(demo.ADMIN, "admin"), ("anno-1", "annotator")}


def test_simulated_bots_given_a_prefix_not_nfkc_normalised_are_stored_as_the_form_finds_them(
    make_project,
):
    project = make_project(name="sim", n_tasks=1)
    call_command("simulate_annotators", project.name, "--bots", "2", "--prefix", "ｂｏｔ")
    call_command("simulate_annotators", project.name, "--bots", "2", "--prefix", "bot")
    bots = get_user_model().objects.filter(memberships__project=project).order_by("username")
    assert [b.username for b in bots] == ["bot-1", "bot-2"]
    assert not any(b.has_usable_password() for b in bots)
    assert Membership.objects.filter(project=project).count() == 2
    assert Ranking.objects.filter(task__project=project).count() == 2  # the task's overlap
    looked_up = UsernameField().to_python("ｂｏｔ-1")  # what the login form looks up
    assert get_user_model()._default_manager.get_by_natural_key(looked_up) == bots[0]


def test_simulation_refuses_an_empty_prefix(make_project):
    project = make_project(name="sim", n_tasks=1)
    with pytest.raises(CommandError, match="--prefix"):
        call_command("simulate_annotators", project.name, "--prefix", " ")
