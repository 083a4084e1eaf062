"""The import's second half, row by row: each member's rows checked, ids remapped, HTML
rendered again here, and written ARCHIVE_CHUNK_ROWS rows a transaction. The run around it (the
hidden project, the clean-up that makes it all or nothing, the audit event) is `staged.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from feedback_app.annotation.importing import MAX_TEXT, prompt_hash
from feedback_app.annotation.models import (
    Assignment,
    Candidate,
    Demonstration,
    Prompt,
    Ranking,
    Task,
)
from feedback_app.annotation.rankings import check_ranking, payload_hash
from feedback_app.common.errors import InvalidInput, Problem
from feedback_app.common.storable import character_problem
from feedback_app.core.models import (
    Job,
    Project,
)

from .format import (
    HTML_FIELDS,
    MAX_PROBLEMS,
    USER,
    Progress,
    Table,
    _fields,
    _ref_of,
)
from .reading import _Reader, _value


@dataclass
class _State:
    """What the import has written so far: old id -> new id per member, users by name."""

    maps: dict[str, dict[int, int]] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    users_created: list[str] = field(default_factory=list)
    task_candidates: dict[int, list[int]] = field(default_factory=dict)  # old ids
    assignment_of: dict[int, tuple[int, str]] = field(default_factory=dict)  # old: (task, user)
    member: str = ""
    problems: list[Problem] = field(default_factory=list)  # the first MAX_PROBLEMS
    found: int = 0  # all of them

    def problem(self, fieldname: str, message: str, line: int | None = None) -> None:
        self.found += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(f"{self.member}: {fieldname}", message, line))

    def raise_if_any(self) -> None:
        if self.problems:
            raise InvalidInput(self.problems)

    def user(self, name: Any, fieldname: str, line: int | None) -> int | None:
        if not isinstance(name, str) or not name or character_problem(name):
            self.problem(fieldname, "must be a username", line)
            return None
        if name not in self.users:
            users = get_user_model()
            pk = users.objects.filter(username=name).values_list("pk", flat=True).first()
            if pk is None:
                try:
                    users._meta.get_field("username").run_validators(name)
                except ValidationError as exc:
                    self.problem(fieldname, "; ".join(exc.messages), line)
                    return None
                user = users(username=name, is_active=False)
                user.set_unusable_password()
                user.save()
                pk = user.pk
                self.users_created.append(name)
            self.users[name] = pk
        return self.users[name]

    def ref(self, key: str, old: Any, fieldname: str, line: int | None) -> int | None:
        if isinstance(old, bool) or not isinstance(old, int):
            self.problem(fieldname, "must be the id of a row in the archive", line)
            return None
        new = self.maps.get(key, {}).get(old)
        if new is None:
            self.problem(fieldname, f"no row {old} in {key}.jsonl", line)
        return new


def _row_values(
    state: _State, table: Table | None, fields: list[models.Field], row: dict, line: int | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model field values, refs to its own member to set later) of one archived row."""
    known = {f.name for f in fields} | {"id"} | set(table.ids if table else ())
    for key in row:
        if key in HTML_FIELDS:
            state.problem(key, "stored HTML is never imported (the text is rendered again)", line)
        elif key not in known:
            state.problem(key, f"not a field of {(table.model if table else Project).__name__}",
                          line)  # fmt: skip
    values: dict[str, Any] = {}
    later: dict[str, Any] = {}
    for f in fields:
        if f.name not in row:
            if f.has_default() or f.null or isinstance(f, models.DateTimeField):
                continue
            state.problem(f.name, "missing", line)
            continue
        raw = row[f.name]
        ref = _ref_of(table, f)
        if ref is None:
            value, message = _value(f, raw)
            if message:
                state.problem(f.name, message, line)
            values[f.name] = value
        elif raw is None:
            if not f.null:
                state.problem(f.name, "must not be null", line)
            values[f.attname] = None
        elif ref == USER:
            values[f.attname] = state.user(raw, f.name, line)
        elif table is not None and ref == table.key:
            later[f.attname] = raw
        elif table is None:
            later[f.attname] = (ref, raw)  # the project's refs: set once every member is in
        else:
            values[f.attname] = state.ref(ref, raw, f.name, line)
    return values, later


def _old_id(state: _State, table: Table, row: dict, line: int, seen: set[int]) -> int | None:
    old = row.get("id")
    if isinstance(old, bool) or not isinstance(old, int):
        state.problem("id", "must be a whole number", line)
        return None
    if old in seen:
        state.problem("id", f"{old} appears twice", line)
        return None
    seen.add(old)
    return old


def _ids(state: _State, key: str, value: Any, name: str, line: int) -> Any:
    """Map the ids inside a JSON value (a list, or a list of groups) of `key`'s rows."""
    if isinstance(value, list):
        return [_ids(state, key, v, name, line) for v in value]
    return state.ref(key, value, name, line)


def _check_groups(state: _State, task_old: int | None, groups: Any, name: str, line: int) -> bool:
    if task_old is None:
        return False
    try:
        check_ranking(groups, state.task_candidates.get(task_old, []), field=name)
    except InvalidInput as exc:
        for p in exc.problems:
            state.problem(p.field, p.message, line)
        return False
    return True


def _check_order(state: _State, task_old: int | None, order: Any, name: str, line: int) -> bool:
    if task_old is None:
        return False
    expected = sorted(state.task_candidates.get(task_old, []))
    if (
        not isinstance(order, list)
        or any(isinstance(i, bool) or not isinstance(i, int) for i in order)
        or sorted(order) != expected
    ):
        state.problem(name, "must list each candidate of the task once", line)
        return False
    return True


def _prepare(state: _State, table: Table, obj: models.Model, row: dict, line: int) -> None:
    """The per-table rules: texts hashed and rendered here, ids inside JSON checked and mapped."""
    task_old = row.get("task") if isinstance(row.get("task"), int) else None
    if isinstance(obj, Prompt):
        if obj.messages is not None:
            messages = obj.messages
            if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("content"), str)
                and len(m["content"]) <= MAX_TEXT and isinstance(m.get("role"), str)
                for m in messages
            ):  # fmt: skip
                state.problem("messages", "must be a list of {role, content} messages", line)
                return
        if obj.content_hash != prompt_hash(obj.text, obj.messages):
            state.problem("content_hash", "does not match the prompt's text", line)
            return
        obj.render()
    elif isinstance(obj, Candidate | Demonstration):
        obj.render()
        if isinstance(obj, Candidate) and task_old is not None:
            state.task_candidates.setdefault(task_old, []).append(row["id"])
    edited = row.get("edited_from")
    ours = state.task_candidates.get(task_old, [])
    if isinstance(obj, Demonstration) and isinstance(edited, int) and edited not in ours:
        state.problem("edited_from", "is not a candidate of the demonstration's task", line)
    if isinstance(obj, Job) and obj.status in Job.ACTIVE:
        # Its worker is on the other instance: here it would be swept or sent again.
        obj.status = Job.Status.CANCELLED
        obj.error = obj.error or f"imported from an archive while {row.get('status')}; not run here"
    if isinstance(obj, Assignment):
        if _check_order(state, task_old, row.get("display_order"), "display_order", line):
            obj.display_order = _ids(state, "candidates", row["display_order"], "display_order",
                                     line)  # fmt: skip
        state.assignment_of[row["id"]] = (task_old, row.get("annotator"))
    if isinstance(obj, Ranking):
        if _check_order(state, task_old, row.get("display_order"), "display_order", line):
            obj.display_order = _ids(state, "candidates", row["display_order"], "display_order",
                                     line)  # fmt: skip
        if _check_groups(state, task_old, row.get("groups"), "groups", line):
            obj.groups = [sorted(g) for g in _ids(state, "candidates", row["groups"], "groups",
                                                  line)]  # fmt: skip
            obj.payload_hash = payload_hash(obj.groups, obj.rationale, obj.flags)
        lease = row.get("assignment")
        if isinstance(lease, int) and state.assignment_of.get(lease) != (
            task_old,
            row.get("annotator"),
        ):
            state.problem("assignment", "is not the lease of this task and annotator", line)


def _write(state: _State, table: Table, batch: list[tuple[int, models.Model, dict]]) -> None:
    """Insert a batch as written in the archive, timestamps included, and keep the new ids.

    A raw insert (what `loaddata` does for fixtures): `bulk_create` would set `created_at` and
    `updated_at` to now, and putting them back with `bulk_update` took 49 of the 72 s of an
    import of 2 000 tasks (bench/archive.py, profiled). Rows without timestamps get now.
    """
    if not batch or state.problems:
        return
    with transaction.atomic():  # one chunk, one short transaction: other writers go on between
        _insert(state, table, batch)


def _insert(state: _State, table: Table, batch: list[tuple[int, models.Model, dict]]) -> None:
    model = table.model
    now = timezone.now()
    objs = []
    for _, obj, _ in batch:
        obj.created_at = obj.created_at or now
        obj.updated_at = obj.updated_at or obj.created_at
        objs.append(obj)
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    size = max(connection.ops.bulk_batch_size(fields, objs), 1)
    ids = state.maps.setdefault(table.key, {})
    for lo in range(0, len(batch), size):
        part = batch[lo : lo + size]
        rows = model._base_manager._insert(
            [obj for _, obj, _ in part], fields=fields, returning_fields=[model._meta.pk], raw=True
        )
        for (old, obj, _), (pk,) in zip(part, rows, strict=True):
            obj.pk = pk
            obj._state.adding = False
            ids[old] = pk


def _import_table(
    state: _State, reader: _Reader, table: Table, project: Project, progress: Progress | None
) -> int:
    state.member = table.member
    if table.member not in reader.names:
        if not table.optional:
            raise InvalidInput(Problem(table.member, "missing from the archive"))
        return 0
    if progress is not None:
        progress(table.member, 0)  # also where a cancel request is heard first
    fields = _fields(table.model)
    m2m = {f.name for f in table.model._meta.many_to_many}
    seen: set[int] = set()
    batch: list[tuple[int, models.Model, dict]] = []
    later: list[tuple[int, dict[str, Any], int]] = []  # (old id, refs to this member, line)
    m2m_rows: list[tuple[int, str, list, int]] = []
    n = 0
    for line, row in reader.lines(table.member):
        n += 1
        old = _old_id(state, table, row, line, seen)
        found = state.found
        values, own = _row_values(state, table, fields, row, line)
        if state.found > found:
            continue  # a value is wrong: nothing more to check on a row that is not stored
        if table.scope == "project":
            values["project"] = project
        obj = table.model(**values)
        _prepare(state, table, obj, row, line)
        for name in m2m & set(row):
            m2m_rows.append((old, name, row[name], line))
        if old is None:
            continue
        if own:
            later.append((old, own, line))
        batch.append((old, obj, row))
        if len(batch) >= settings.ARCHIVE_CHUNK_ROWS:
            _write(state, table, batch)
            batch = []
            if progress is not None:
                progress(table.member, n)
    _write(state, table, batch)
    _set_later(state, table, later, m2m_rows)
    state.raise_if_any()
    if progress is not None:
        progress(table.member, n)
    return n


def _set_later(state: _State, table: Table, later: list, m2m_rows: list) -> None:
    """Refs of a member to itself (parent, retry of), and many-to-many ids, once it is in."""
    if state.problems:
        return
    ids = state.maps.get(table.key, {})
    names = sorted({attname for _, own, _ in later for attname in own})
    updates = []
    for old, own, line in later:
        obj = table.model(pk=ids.get(old))
        for attname in names:
            raw = own.get(attname)
            name = attname.removesuffix("_id")
            setattr(obj, attname, None if raw is None else state.ref(table.key, raw, name, line))
        updates.append(obj)
    if updates and not state.problems:
        table.model.objects.bulk_update(updates, names)
    for old, name, raw, line in m2m_rows:
        target = table.ids.get(name)
        if not isinstance(raw, list) or target is None:
            state.problem(name, "must be a list of ids", line)
            continue
        new = [state.ref(target, v, name, line) for v in raw]
        if not state.problems:
            getattr(table.model(pk=ids[old]), name).set(new)


def _set_gold(state: _State, reader: _Reader) -> None:
    """Gold orders name candidates, which come after tasks: check and map them at the end."""
    state.member = "tasks.jsonl"
    tasks = state.maps.get("tasks", {})
    updates = []
    for line, row in reader.lines("tasks.jsonl"):
        gold = row.get("gold")
        if gold is None:
            continue
        if _check_groups(state, row.get("id"), gold, "gold", line):
            groups = _ids(state, "candidates", gold, "gold", line)
            updates.append(Task(pk=tasks[row["id"]], gold=[sorted(g) for g in groups]))
    state.raise_if_any()
    if updates:
        Task.objects.bulk_update(updates, ["gold"])
