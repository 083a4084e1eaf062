"""AI judges as members (issue 23): a reward-model judge ranks a round through the people's
hand-out and submit as a job; an endpoint's key never leaves the environment."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.urls import reverse

from feedback_app.annotation.handout import task_assign_next
from feedback_app.annotation.models import Assignment, JudgeVote, Ranking
from feedback_app.common.errors import InvalidInput
from feedback_app.core.audit import Origin
from feedback_app.core.models import AuditEvent, Job, Judge, Membership, ModelVersion
from feedback_app.finetuning import jobs, kinds, services
from feedback_app.workspace.archive.export import archive_write
from feedback_app.workspace.judges import JudgeSpec, judge_add, judges_of
from feedback_app.workspace.members import members_of
from tests.api.conftest import client_for
from training.judges import copeland_groups

pytestmark = pytest.mark.django_db

KEY = "sk-judge-4b1d9e-do-not-leak"
SEALED_KEY = "sk-sealed-77c0aa-do-not-leak"


@pytest.fixture
def chat_endpoint():
    """A stand-in OpenAI chat endpoint on 127.0.0.1 that always answers "A" and records the
    Authorization header of each request: (base url, headers seen)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append(self.headers.get("Authorization", ""))
            body = json.dumps({
                "id": "c", "object": "chat.completion", "created": 0, "model": "judge",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "A, it is clearer."}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
            }).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def tiny_reward_model(tiny_policy, tmp_path_factory) -> str:
    """The tiny base with a seeded, untrained score head: it scores candidates apart."""
    import torch

    from training.reward import load_reward_model

    torch.manual_seed(0)
    model, tokenizer = load_reward_model(tiny_policy, train=False)
    out = tmp_path_factory.mktemp("judge-reward")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def _run(job: Job) -> Job:
    jobs.job_execute(
        job_id=job.pk, worker="w", runners=kinds.RUNNERS, torch_kinds=kinds.TORCH_KINDS
    )
    job.refresh_from_db()
    return job


@pytest.fixture
def reward_judge(make_project, alice, tiny_reward_model):
    project = make_project(name="J", k=3, overlap=2, n_tasks=3, annotators=[alice])
    version = ModelVersion.objects.create(
        project=project, kind="reward", name="rm-1", weights=tiny_reward_model
    )
    judge = judge_add(
        project=project,
        spec=JudgeSpec(name="rm-judge", kind="reward_model", model_version=version.pk),
    )
    return project, judge


def test_a_judge_is_a_member_listed_apart_who_cannot_sign_in(reward_judge, alice):
    project, judge = reward_judge
    assert list(judges_of(project)) == [judge]
    assert [m.user for m in members_of(project)] == [alice]
    assert Membership.objects.filter(project=project, user=judge.user).exists()
    assert not judge.user.is_active and not judge.user.has_usable_password()


def test_a_reward_model_judge_ranks_a_round_through_the_handout_and_submit(reward_judge, alice):
    project, judge = reward_judge
    alice_lease = task_assign_next(project=project, annotator=alice)  # people share the slots
    job = services.job_launch(project=project, kind="judge_round", params={"judge": judge.pk})
    job = _run(job)
    assert job.status == "succeeded", job.error
    rankings = list(Ranking.objects.filter(annotator=judge.user))
    assert len(rankings) == 3 and job.outputs["ranked"] == 3
    assert job.outputs["comparisons"] == 9  # 3 pairs a task, both orders each
    assert job.outputs["tokens"] > 0 and job.outputs["seconds"] >= 0
    assert job.progress == 1.0
    # Every ranking went through a lease and the one validator, with its vote beside it.
    assert Assignment.objects.filter(annotator=judge.user, status="submitted").count() == 3
    for r in rankings:
        vote = JudgeVote.objects.get(ranking=r)
        assert len(vote.comparisons) == 3 and vote.inconsistent == 0  # a reward model
        assert all(c["a"] < c["b"] for c in vote.comparisons)
        ids = sorted({x for c in vote.comparisons for x in (c["a"], c["b"])})
        groups, _ = copeland_groups(
            3, [(ids.index(c["a"]), ids.index(c["b"]), c["a_first"]) for c in vote.comparisons]
        )
        assert r.groups == [[ids[i] for i in g] for g in groups]
        assert "reward" in r.rationale
    # Overlap holds: alice's lease still has its slot, and her ranking is still wanted.
    assert alice_lease.task.rankings.count() == 1
    assert task_assign_next(project=project, annotator=alice).pk == alice_lease.pk


def test_a_judge_round_retried_ranks_only_what_is_left(reward_judge):
    project, judge = reward_judge
    first = _run(services.job_launch(
        project=project, kind="judge_round", params={"judge": judge.pk, "limit": 1}
    ))  # fmt: skip
    assert first.outputs["ranked"] == 1
    second = _run(
        services.job_launch(project=project, kind="judge_round", params={"judge": judge.pk})
    )
    assert second.outputs["ranked"] == 2
    assert Ranking.objects.filter(annotator=judge.user).count() == 3


def test_judge_round_refuses_a_judge_of_another_project(reward_judge, make_project):
    _, judge = reward_judge
    other = make_project(name="other")
    with pytest.raises(InvalidInput) as exc:
        services.job_launch(project=other, kind="judge_round", params={"judge": judge.pk})
    assert exc.value.problems[0].field == "judge"


def test_a_judge_spec_names_the_bad_field(make_project):
    project = make_project(name="S")
    cases = [
        (JudgeSpec(name="x y", kind="openai"), "name"),
        (JudgeSpec(name="j", kind="robot"), "kind"),
        (JudgeSpec(name="j", kind="reward_model", model_version=999), "model_version"),
        (JudgeSpec(name="j", kind="openai", base_url="ftp://x", model_name="m"), "base_url"),
        (
            JudgeSpec(
                name="j", kind="openai", base_url="http://x", model_name="m", api_key_env=KEY
            ),
            "api_key_env",
        ),  # fmt: skip
        (JudgeSpec(name="j", kind="causal_lm", weights="w", template="{nope}"), "template"),
        (
            JudgeSpec(
                name="j",
                kind="openai",
                base_url="http://x",
                model_name="m",
                api_key_env="K",
                api_key="sk-1",
            ),
            "api_key",
        ),  # fmt: skip
        (
            JudgeSpec(
                name="j", kind="openai", base_url="http://x", model_name="m", api_key="sk 1\n"
            ),
            "api_key",
        ),  # fmt: skip
        (JudgeSpec(name="j", kind="causal_lm", weights="w", unsure_margin=-1), "unsure_margin"),
    ]
    for spec, field in cases:
        with pytest.raises(InvalidInput) as exc:
            judge_add(project=project, spec=spec)
        assert exc.value.problems[0].field == field, spec


def test_an_endpoint_key_never_appears_in_a_page_log_export_or_archive(
    make_project, alice, client, monkeypatch, caplog, tmp_path, chat_endpoint
):
    """Both ways of giving a key: an environment variable's name, and the key itself (sealed
    at once, opened only by the worker, which sends it: the endpoint saw it)."""
    monkeypatch.setenv("JUDGE_TEST_KEY", KEY)
    url, authorizations = chat_endpoint
    project = make_project(name="K", k=2, overlap=2, n_tasks=1)  # a slot each judge
    Membership.objects.create(project=project, user=alice, role="admin")
    judge = judge_add(
        project=project,
        spec=JudgeSpec(
            name="gpt-judge", kind="openai", base_url="http://127.0.0.1:9/v1",
            model_name="judge", api_key_env="JUDGE_TEST_KEY",
        ),
        origin=Origin(user=alice, interface="page"),
    )  # fmt: skip
    job = _run(services.job_launch(project=project, kind="judge_round", params={"judge": judge.pk}))
    assert job.status == "failed"  # nothing listens on port 9: the client's error is redacted
    api = client_for(alice)
    added = api.post(
        f"/api/v1/projects/{project.pk}/judges/",
        {"name": "sealed-judge", "kind": "openai", "base_url": url, "model_name": "judge",
         "api_key": SEALED_KEY},
        format="json",
    )  # fmt: skip
    assert added.status_code == 201 and added.json()["has_api_key"] is True
    sealed_judge = Judge.objects.get(pk=added.json()["id"])
    assert sealed_judge.api_key_sealed and SEALED_KEY not in sealed_judge.api_key_sealed
    ran = _run(
        services.job_launch(project=project, kind="judge_round", params={"judge": sealed_judge.pk})
    )
    assert ran.status == "succeeded" and ran.outputs["ranked"] == 1, ran.error
    assert authorizations and set(authorizations) == {f"Bearer {SEALED_KEY}"}
    seen = [job.error, job.traceback, job.log_tail, str(job.outputs), str(job.params), caplog.text]
    seen += [ran.log_tail, str(ran.outputs), str(ran.params), added.content.decode()]
    seen += [r.rationale for r in Ranking.objects.filter(annotator=sealed_judge.user)]
    seen += [str(e.data) for e in AuditEvent.objects.all()]
    client.force_login(alice)
    seen.append(client.get(reverse("workspace:members", args=[project.pk])).content.decode())
    listed = api.get(f"/api/v1/projects/{project.pk}/judges/")
    assert listed.status_code == 200 and listed.json()[0]["api_key_env"] == "JUDGE_TEST_KEY"
    assert "api_key" not in listed.json()[1] and listed.json()[1]["has_api_key"] is True
    seen += [
        listed.content.decode(),
        api.get(f"/api/v1/projects/{project.pk}/members/").content.decode(),
    ]
    pairs = api.get(f"/api/v1/projects/{project.pk}/pairs/")
    seen.append(
        b"".join(pairs.streaming_content).decode() if pairs.streaming else pairs.content.decode()
    )
    export = api.get(f"/api/v1/projects/{project.pk}/export/")
    buffer = io.BytesIO()
    archive_write(project, buffer)
    for zipped in (b"".join(export.streaming_content), buffer.getvalue()):
        with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
            seen += [archive.read(name).decode() for name in archive.namelist()]
    assert any("gpt-judge" in text and "<html" in text for text in seen)  # the page lists it
    assert any("stored sealed" in text and "<html" in text for text in seen)
    assert not [text for text in seen if KEY in text or SEALED_KEY in text]
