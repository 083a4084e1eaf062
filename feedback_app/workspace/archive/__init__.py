"""A whole project as one archive file, and back: export on one instance, import on another.

The archive is a zip file (streamed out, never built in memory) holding one JSONL member a
table and `manifest.json` (format name, format version, rows per member). Rows name each other
by their ids on the exporting instance ("refs"); the import gives every row a new id and maps
the refs. Users are named by username. What is exported, and what is not:

- the project's settings, every concrete field of `Project` read generically (fields added
  later travel without a change here), and its members with their roles;
- prompts, tasks (gold orders too), candidates, leases (display order), rankings (groups, ties,
  display order, time spent, rationale, flags, when), dropped rankings, more-votes requests,
  demonstrations (written and edited), deployment feedback;
- model lineage (versions with parent, stage, metrics, weights path as written), jobs
  (metadata only) and dataset snapshots (metadata only: content hash, counts, policy, path);
- NOT the weights files nor the snapshots' files (their paths are kept as written), nor what is
  derived from the above (the quality report, the review queue: recomputed), nor the audit log
  (it belongs to the instance; the import and the export are recorded in it).

Stored HTML is never read from an archive: it carries a keyed MAC (common/rendering.py) that
another instance's key cannot vouch for, so the text is imported and rendered again here
(`render()`, the models' one renderer); an archive with an HTML field is refused.

The import is all or nothing without one long transaction (`staged.py`): the upload's cheap
checks answer a 400 at once; the rows are written in chunks into a hidden project, which is shown
when the last is in; a problem later (named by member, line and field) or a cancel deletes what
was written. Through the API it runs as a job (finetuning's `import_archive` kind).
"""

from .export import archive_export, archive_stream, archive_write
from .format import (
    FORMAT,
    HTML_FIELDS,
    MANIFEST,
    NOTES,
    PROJECT,
    USER,
    VERSION,
    Table,
    table_register,
    tables,
)
from .reading import ImportResult
from .staged import Staged, archive_import, archive_import_run, archive_stage

__all__ = [
    "FORMAT",
    "HTML_FIELDS",
    "MANIFEST",
    "NOTES",
    "PROJECT",
    "USER",
    "VERSION",
    "ImportResult",
    "Staged",
    "Table",
    "archive_export",
    "archive_import",
    "archive_import_run",
    "archive_stage",
    "archive_stream",
    "archive_write",
    "table_register",
    "tables",
]
