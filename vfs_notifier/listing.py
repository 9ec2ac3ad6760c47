"""What `vfs-notifier list` prints: the registered rows as a plain table or as JSON.

Pure: rows in, text out. The embedded store has no client on a fresh machine (no `sqlite3`
program), so this is how people see what the service registered.
"""

from __future__ import annotations

import json
from typing import Iterable, Iterator

from .store import VideoRow

COLUMNS = ("id", "status", "created", "path", "url")


def table_lines(rows: Iterable[VideoRow]) -> Iterator[str]:
    """A header and one line per row, columns aligned; a path with a newline or another
    control character in its name is escaped, so one row is always one line."""
    cells = [(str(r.id), _shown(r.status), _shown(r.created_date), _escaped(r.path), _shown(r.url))
             for r in rows]
    widths = [max([len(name)] + [len(c[i]) for c in cells]) for i, name in enumerate(COLUMNS)]
    for line in [COLUMNS, *cells]:
        yield "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()


def json_chunks(rows: Iterable[VideoRow]) -> Iterator[str]:
    """One JSON array of objects (keys: COLUMNS and main_dir), written row by row, so that a
    large table is never held in memory twice."""
    yield "["
    for index, row in enumerate(rows):
        item = {"id": row.id, "status": row.status, "created": row.created_date, "path": row.path,
                "url": row.url, "main_dir": row.main_dir}
        yield ("," if index else "") + "\n  " + json.dumps(item, ensure_ascii=False)
    yield "\n]\n"


def _shown(value: object) -> str:
    return "NULL" if value is None else _escaped(str(value))


def _escaped(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
