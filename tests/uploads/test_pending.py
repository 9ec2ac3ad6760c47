"""Held files are told, never silent: `vfs-notifier pending` prints each held path with the
reason in words, one per line, and exits 0; the STATUS line counts them ("3 held")."""

from __future__ import annotations

import re
import shutil

from tests.support.daemon import run_cli
from tests.uploads.support import HOLD_CHECK, assert_no_row, RowHistory


def _unfinished(root, sources) -> list:
    """What interrupted uploads leave: a truncated MP4 (no moov) and AVI (RIFF size larger
    than the file), and a Matroska file at full length, zero-filled after 1 MB (aria2c)."""
    held = []
    for ending in ("mp4", "avi"):
        data = sources[ending].read_bytes()
        path = root / "incoming" / f"cut.{ending}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data[:len(data) // 3])
        held.append(path)
    data = sources["mkv"].read_bytes()
    path = root / "incoming" / "zeros.mkv"
    path.write_bytes(data[:1_000_000] + b"\0" * (len(data) - 1_000_000))
    held.append(path)
    return held


def test_pending_lists_held_files_with_reasons(utree, sources, start_service):
    held = _unfinished(utree.root, sources)
    done = utree.root / "incoming" / "done.mov"
    shutil.copyfile(sources["mov"], done)
    daemon = start_service()
    history = RowHistory(utree.table).start()
    problems = []
    try:
        utree.table.wait_for(lambda rows: str(done) in [r.path for r in rows], timeout=10,
                             what="the finished file's row")
        try:
            assert_no_row(history, utree.root, "held files", wait=HOLD_CHECK - 2, allowed=[done])
        except AssertionError as err:   # still ask `pending`: its answer is this test's subject
            problems.append(str(err)[:300])
        result = run_cli("pending", env=utree.env)
        if result.returncode != 0:
            problems.append(f"`vfs-notifier pending` exited {result.returncode}: {result.stderr.strip()[-500:]}")
        lines = result.stdout.splitlines()
        for path in held:
            mine = [line for line in lines if str(path) in line]
            if len(mine) != 1:
                problems.append(f"pending lists {path.name} on {len(mine)} lines (want 1): {lines[:10]}")
            elif not mine[0].replace(str(path), "").strip(" \t:-—()"):
                problems.append(f"pending gives no reason for {path.name}: {mine[0]!r}")
        if any(str(done) in line for line in lines):
            problems.append(f"pending lists the finished {done.name}")
        statuses = [m for m in daemon.notify.messages if "STATUS=" in m]
        if not any(re.search(r"\b3 held\b", m) for m in statuses[-3:]):
            problems.append(f"STATUS does not count 3 held files: {statuses[-1:]}")
        assert not problems, "\n".join(problems)
    finally:
        history.stop()
