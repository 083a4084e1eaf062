"""Archives whose zip members are damaged in their headers: an encrypted flag, a compression
method Python cannot decode (99 is WinZip's AES), a wrong CRC. Each is a 400 naming the member
and nothing is written (issue 26: these were 500s); generated damage finds the next such class.

The damage is patched into the bytes of a real export, in the member's local header and its
central directory entry alike, as a tool that wrote it would have.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from feedback_app.annotation.models import Candidate, Prompt
from feedback_app.core.models import Project
from feedback_app.workspace import archive

pytestmark = pytest.mark.django_db

IMPORT = "/api/v1/projects/import-archive/"
_LOCAL, _CENTRAL = b"PK\x03\x04", b"PK\x01\x02"


def patch_member(
    data: bytes, member: str, *, flags: int = 0, method: int | None = None, crc_xor: int = 0
) -> bytes:
    """`data` with `member`'s general-purpose flags OR-ed with `flags`, its compression method
    set to `method` and its CRC XOR-ed with `crc_xor`, in both of its headers."""
    out = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    # (header, offset of flags, of method, of CRC) per the zip format (APPNOTE 4.3.7, 4.3.12)
    at = out.find(_CENTRAL)
    places = [(info.header_offset, 6, 8, 14)]
    while at != -1:
        name_len = struct.unpack_from("<H", out, at + 28)[0]
        if bytes(out[at + 46 : at + 46 + name_len]) == member.encode():
            places.append((at, 8, 10, 16))
        at = out.find(_CENTRAL, at + 4)
    assert len(places) == 2, member
    for start, f, m, c in places:
        struct.pack_into("<H", out, start + f, struct.unpack_from("<H", out, start + f)[0] | flags)
        if method is not None:
            struct.pack_into("<H", out, start + m, method)
        struct.pack_into(
            "<I", out, start + c, struct.unpack_from("<I", out, start + c)[0] ^ crc_xor
        )
    return bytes(out)


@pytest.fixture
def staff() -> APIClient:
    from django.contrib.auth import get_user_model

    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("root", is_staff=True))
    return client


@pytest.fixture
def exported(db, make_project, alice) -> bytes:
    """A small project's archive, the project then deleted (its user kept)."""
    from feedback_app.annotation import handout, submit

    project = make_project(name="Small", k=3, overlap=1, n_tasks=3, annotators=[alice])
    a = handout.task_assign_next(project=project, annotator=alice)
    ids = sorted(Candidate.objects.filter(task_id=a.task_id).values_list("pk", flat=True))
    submit.ranking_submit(task_id=a.task_id, annotator=alice, groups=[ids[:1], ids[1:]])
    data = b"".join(archive.archive_stream(project))
    project.delete()
    return data


def _size(data: bytes, member: str) -> int:
    return zipfile.ZipFile(io.BytesIO(data)).getinfo(member).file_size


@dataclass
class Outcome:
    """How an import ended: refused at upload (`status` 400, `fields` from the answer), or
    accepted (202) and its job run here: `status` 201 when it succeeded, else 400 with the
    fields the job's error names first."""

    status: int
    fields: list[str]
    content: object


def _import(client: APIClient, data: bytes) -> Outcome:
    from feedback_app.core.models import Job
    from feedback_app.finetuning import jobs, kinds

    response = client.post(IMPORT, {"file": io.BytesIO(data)}, format="multipart")
    if response.status_code != 202:
        fields = [e["field"] for e in response.json().get("errors", [])]
        return Outcome(response.status_code, fields, response.content)
    job = Job.objects.get(pk=response.json()["id"])
    jobs.job_execute(job_id=job.pk, worker="test", runners=kinds.RUNNERS)
    job.refresh_from_db()
    if job.status == "succeeded":
        return Outcome(201, [], job.outputs)
    named = re.match(r"InvalidInput: (?:line \d+ of )?([^:;]+)", job.error)
    return Outcome(400, [named[1] if named else job.error], job.error)


def _nothing_written() -> bool:
    """No rows; at most the empty hidden project a failed job hangs off (renamed, archived)."""
    live = Project.objects.exclude(name__contains="(import failed", archived=True)
    return not live.exists() and not Prompt.objects.exists()


DAMAGE = [
    ("manifest.json", {"flags": 0x1}),
    ("prompts.jsonl", {"flags": 0x1}),
    ("manifest.json", {"method": 99}),
    ("prompts.jsonl", {"method": 99}),
    ("manifest.json", {"crc_xor": 0xFFFF}),
    ("prompts.jsonl", {"crc_xor": 1}),
    ("manifest.json", {"flags": 0x40}),  # strong encryption
    ("tasks.jsonl", {"flags": 0x20}),  # compressed patched data
    ("manifest.json", {"method": zipfile.ZIP_STORED}),  # deflated bytes read as they are
    ("prompts.jsonl", {"method": zipfile.ZIP_BZIP2}),
    ("prompts.jsonl", {"method": zipfile.ZIP_LZMA}),
]


@pytest.mark.parametrize(("member", "damage"), DAMAGE, ids=[f"{m}-{d}" for m, d in DAMAGE])
def test_a_member_with_a_damaged_header_is_a_400_naming_it_and_nothing_is_written(
    staff, exported, member, damage
):
    response = _import(staff, patch_member(exported, member, **damage))
    assert response.status == 400, response.content
    assert response.fields == [member]
    assert _nothing_written()


def test_the_patcher_changes_only_what_it_is_told(staff, exported):
    """No damage: the patched archive is the export, and it imports."""
    assert patch_member(exported, "manifest.json") == exported
    assert _import(staff, exported).status == 201


def test_generated_damage_to_any_member_is_refused_naming_it_or_is_harmless(staff, exported):
    """Any flags, any method, any CRC change on any member: a 400 naming that member with
    nothing written, or (damage that changes nothing: UTF-8 names, another method for an empty
    member) an import; a wrong CRC on a member with content is always refused."""
    members = [i.filename for i in zipfile.ZipFile(io.BytesIO(exported)).infolist()]

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        member=st.sampled_from(members),
        flags=st.sampled_from([0, 0x1, 0x8, 0x20, 0x40, 0x800, 0x2000]) | st.integers(0, 0xFFFF),
        method=st.none() | st.sampled_from([0, 1, 6, 9, 12, 14, 19, 93, 95, 98, 99]),
        crc_xor=st.just(0) | st.integers(1, 2**32 - 1),
    )
    def check(member: str, flags: int, method: int | None, crc_xor: int) -> None:
        response = _import(staff, patch_member(exported, member, flags=flags, method=method,
                                               crc_xor=crc_xor))  # fmt: skip
        if response.status == 201:  # harmless: UTF-8 names, an empty member's method...
            Project.objects.all().delete()
            assert crc_xor == 0 or not _size(exported, member), (member, flags, method, crc_xor)
            return
        assert response.status == 400, (member, flags, method, crc_xor, response.content)
        assert response.fields in ([member], ["file"]), response.fields
        assert _nothing_written()
        Project.objects.all().delete()

    check()
