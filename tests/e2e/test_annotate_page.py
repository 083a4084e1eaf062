"""The ranking page in a real browser: keyboard, no-JavaScript form, drag and drop, XSS, mobile."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from feedback_app.annotation import services
from feedback_app.annotation.importing import check_records
from feedback_app.annotation.models import Assignment, Ranking
from feedback_app.core.models import Membership, Project

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def annotate_url(live_server, project) -> str:
    return f"{live_server.url}/projects/{project.pk}/annotate/"


def open_ranking_page(page, live_server, user, project, *, js: bool = True) -> Assignment:
    """Log in as `user`, open the project's ranking page and return the lease it shows."""
    login(page, live_server, user.username, "pw-" + user.username)
    page.goto(annotate_url(live_server, project))
    if js:
        # annotate.js adds the class once it has wired the keys: pressing keys before is a race.
        expect(page.locator("#rank-form.js")).to_have_count(1)
    assignment = Assignment.objects.get(annotator=user, status=Assignment.Status.LEASED)
    action = page.locator("#rank-form").get_attribute("action")
    assert f"/tasks/{assignment.task_id}/" in action
    return assignment


def at(assignment: Assignment, *positions: int) -> list[int]:
    """Candidate ids shown at 1-based display positions, sorted as a stored tie is."""
    return sorted(assignment.display_order[p - 1] for p in positions)


def expect_badges(page, badges: dict[str, str]) -> None:
    for label, text in badges.items():
        expect(page.get_by_test_id(f"rank-{label}")).to_have_text(text)


def test_annotator_logs_in_ranks_with_the_keyboard_and_the_ranking_is_stored(
    page, live_server, make_user, make_project
):
    alice = make_user("alice")
    project = make_project(name="Keys", k=4, n_tasks=2, annotators=[alice])
    assignment = open_ranking_page(page, live_server, alice, project)
    expect(page.get_by_test_id("progress")).to_contain_text("0 done")
    first_prompt = page.get_by_test_id("prompt").inner_text()

    # B and A tie for first, then D; C is the last one left and falls into place.
    for key in ["2", "=", "1", "4"]:
        page.keyboard.press(key)
    expect_badges(page, {"A": "#1 (tie)", "B": "#1 (tie)", "C": "#3", "D": "#2"})
    expect(page.get_by_test_id("ranking").locator("li")).to_have_text(["B = A", "D", "C"])

    page.keyboard.press("Enter")
    expect(page.get_by_test_id("progress")).to_contain_text("1 done")
    expect(page.get_by_test_id("prompt")).not_to_have_text(first_prompt)

    ranking = Ranking.objects.get(annotator=alice)
    assert ranking.assignment_id == assignment.pk
    assert ranking.groups == [at(assignment, 1, 2), at(assignment, 4), at(assignment, 3)]
    assert ranking.display_order == assignment.display_order
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SUBMITTED


def test_backspace_undoes_the_last_placement_help_opens_with_question_mark_and_s_skips(
    page, live_server, make_user, make_project
):
    alice = make_user("alice")
    project = make_project(name="Undo", k=3, n_tasks=2, annotators=[alice])
    assignment = open_ranking_page(page, live_server, alice, project)

    page.keyboard.press("1")
    page.keyboard.press("2")  # C falls into place: three placements on the undo stack
    expect_badges(page, {"A": "#1", "B": "#2", "C": "#3"})
    page.keyboard.press("Backspace")  # undoes C's automatic placement
    page.keyboard.press("Backspace")  # undoes B
    expect_badges(page, {"A": "#1", "B": "", "C": ""})
    expect(page.get_by_test_id("ranking").locator("li")).to_have_text(["A"])
    page.keyboard.press("3")
    expect_badges(page, {"A": "#1", "B": "#3", "C": "#2"})

    help_dialog = page.locator("dialog#help")
    expect(help_dialog).to_be_hidden()
    page.keyboard.press("?")
    expect(help_dialog).to_be_visible()
    page.keyboard.press("s")  # ignored while the dialog is open
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.LEASED

    page.keyboard.press("s")
    expect(page.locator(".messages")).to_contain_text("Skipped")
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SKIPPED
    assert not Ranking.objects.exists()
    next_lease = Assignment.objects.get(annotator=alice, status=Assignment.Status.LEASED)
    assert next_lease.task_id != assignment.task_id


XSS_PAYLOADS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    "[click](javascript:window.__xss=1)",
    "<svg onload=window.__xss=1>",
    '<a href="javascript:window.__xss=1">x</a>',
    '<iframe src="javascript:window.__xss=1">',
    '<iframe src="javascript:top.__xss=1">',
    "[mixed](JaVaScRiPt:window.__xss=1)",
    "<details open ontoggle=window.__xss=1>",
    '"><script>window.__xss=1</script>',
    "<style>body{display:none}</style>",
    '<object data="javascript:window.__xss=1"></object>',
    "<javascript:window.__xss=1>",
]
FENCED = "```html\n<script>window.__xss=1</script>\n<img src=x onerror=window.__xss=1>\n```"


def _paragraphs(payloads: list[str]) -> str:
    return "\n\n".join(payloads)


def test_completions_full_of_xss_payloads_run_nothing(page, live_server, make_user):
    alice = make_user("alice")
    project = Project.objects.create(name="XSS", candidates_per_task=4, annotations_per_task=1)
    Membership.objects.create(project=project, user=alice)
    candidates = [
        _paragraphs(XSS_PAYLOADS[0:4] + ["[a safe link](https://example.com/)"]),
        _paragraphs(XSS_PAYLOADS[4:8]),
        _paragraphs(XSS_PAYLOADS[8:]),
        "A completion with code:\n\n" + FENCED,
    ]
    chat = [
        {"role": "system", "content": XSS_PAYLOADS[1]},
        {"role": "user", "content": _paragraphs(XSS_PAYLOADS[:3] + [FENCED])},
    ]
    records = check_records(
        [
            (1, {"prompt": _paragraphs(XSS_PAYLOADS), "candidates": candidates}),
            (2, {"prompt": chat, "candidates": [c + "\n\nchat" for c in candidates]}),
        ],
        k=4,
    )
    services.prompts_import(project=project, records=records)

    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    # Not open_ranking_page: a payload that broke the page must fail on the checks below.
    login(page, live_server, "alice", "pw-alice")
    page.goto(annotate_url(live_server, project))

    for prompt_payloads in (XSS_PAYLOADS, XSS_PAYLOADS[:3]):
        # Give onerror/onload/ontoggle handlers (they fire after load) the chance to run.
        page.wait_for_timeout(300)
        assert page.evaluate("typeof window.__xss") == "undefined"
        assert dialogs == []
        untrusted = page.locator(".candidates, .prompt")
        assert untrusted.count() == 2
        dangerous = "script, iframe, object, embed, svg, img, style, details, form, input"
        assert page.locator(f".candidates :is({dangerous}), .prompt :is({dangerous})").count() == 0
        handlers = page.evaluate(
            """() => [...document.querySelectorAll('.candidates *, .prompt *')]
                .flatMap((el) => [...el.attributes].map((a) => a.name))
                .filter((name) => name.toLowerCase().startsWith('on'))"""
        )
        assert handlers == []
        hrefs = page.locator(".candidates a[href], .prompt a[href]").evaluate_all(
            "(links) => links.map((a) => a.getAttribute('href'))"
        )
        assert hrefs == ["https://example.com/"]  # the safe link survives, nothing else
        assert all(not h.strip().lower().startswith("javascript:") for h in hrefs)
        assert page.locator("body").is_visible()  # the <style> payload did not apply

        # Rendered as text, not dropped: every payload reads back verbatim.
        prompt_text = page.get_by_test_id("prompt").inner_text()
        for payload in prompt_payloads:
            assert payload in prompt_text
        candidates_text = page.locator(".candidates").inner_text()
        for payload in XSS_PAYLOADS:
            assert payload in candidates_text
        assert "<script>window.__xss=1</script>\n<img src=x onerror=window.__xss=1>" in (
            page.locator(".candidates pre code").inner_text()
        )

        # On to the chat prompt.
        page.get_by_test_id("skip").click()
        expect(page.locator(".messages")).to_contain_text("Skipped")
        if prompt_payloads is XSS_PAYLOADS:
            expect(page.locator(".prompt .message.role-system")).to_contain_text(XSS_PAYLOADS[1])
    expect(page.get_by_test_id("all-done")).to_be_visible()


def test_ranking_page_stacks_candidates_without_sideways_scroll_at_360px(
    new_page, live_server, make_user, make_project
):
    alice = make_user("alice")
    project = make_project(name="Phone", k=3, n_tasks=2, annotators=[alice])
    page = new_page(viewport={"width": 360, "height": 800}, is_mobile=True, has_touch=True)
    assignment = open_ranking_page(page, live_server, alice, project)

    boxes = [page.get_by_test_id(f"candidate-{label}").bounding_box() for label in "ABC"]
    for box in boxes:
        assert box["x"] == pytest.approx(boxes[0]["x"], abs=1)
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 360 + 1
    for above, below in zip(boxes, boxes[1:], strict=False):
        assert below["y"] >= above["y"] + above["height"]  # stacked, not side by side
    assert page.evaluate("document.documentElement.scrollWidth") <= 360 + 1
    assert page.evaluate("document.body.scrollWidth") <= 360 + 1

    page.keyboard.press("3")
    page.keyboard.press("1")
    expect_badges(page, {"A": "#2", "B": "#3", "C": "#1"})
    expect(page.get_by_test_id("ranking")).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("progress")).to_contain_text("1 done")
    ranking = Ranking.objects.get(annotator=alice)
    assert ranking.groups == [at(assignment, 3), at(assignment, 1), at(assignment, 2)]


def test_plain_form_submits_without_javascript(new_page, live_server, make_user, make_project):
    alice = make_user("alice")
    project = make_project(name="NoJS", k=3, n_tasks=2, annotators=[alice])
    page = new_page(java_script_enabled=False)
    assignment = open_ranking_page(page, live_server, alice, project, js=False)
    expect(page.locator(".ranking-panel")).to_be_hidden()
    expect(page.locator("dialog#help")).to_be_hidden()

    for i, label in enumerate("ABC"):
        card = page.get_by_test_id(f"candidate-{label}")
        assert card.get_attribute("data-candidate") == str(assignment.display_order[i])
    # A and C tie for first, B second.
    for label, rank in {"A": "1", "B": "2", "C": "1"}.items():
        page.get_by_test_id(f"candidate-{label}").locator("select").select_option(rank)
    page.fill("textarea[name=rationale]", "A and C are equally good")
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("progress")).to_contain_text("1 done")

    ranking = Ranking.objects.get(annotator=alice)
    assert ranking.groups == [at(assignment, 1, 3), at(assignment, 2)]
    assert ranking.rationale == "A and C are equally good"


def test_drag_and_drop_adds_to_the_ranking_and_ties_with_a_group(
    page, live_server, make_user, make_project
):
    alice = make_user("alice")
    project = make_project(name="Drag", k=4, n_tasks=1, annotators=[alice])
    assignment = open_ranking_page(page, live_server, alice, project)

    page.get_by_test_id("candidate-B").drag_to(page.locator(".ranking-panel"))
    expect_badges(page, {"A": "", "B": "#1", "C": "", "D": ""})
    page.get_by_test_id("candidate-D").drag_to(page.locator(".ranking-panel"))
    expect_badges(page, {"B": "#1", "D": "#2"})
    # Onto a ranked group: ties with it; C, the last one left, then falls into place.
    page.get_by_test_id("candidate-A").drag_to(page.locator(".ranking li[data-group='0']"))
    expect_badges(page, {"A": "#1 (tie)", "B": "#1 (tie)", "C": "#3", "D": "#2"})
    expect(page.get_by_test_id("ranking").locator("li")).to_have_text(["B = A", "D", "C"])

    page.keyboard.press("Enter")
    expect(page.get_by_test_id("all-done")).to_be_visible()
    ranking = Ranking.objects.get(annotator=alice)
    assert ranking.groups == [at(assignment, 1, 2), at(assignment, 4), at(assignment, 3)]
