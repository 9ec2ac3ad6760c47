"""A file written by appends in two sessions (`cat part1 >> f`, later `cat part2 >> f`):
each session ends with a close, so events cannot tell; after part 1 there must be no row,
after part 2 exactly one. In all four containers (each cut in the middle of its media)."""

from __future__ import annotations

import pytest

from tests.uploads.support import assert_interrupted, assert_no_row, assert_one_row


def _halves(source, staging):
    data = source.read_bytes()
    middle = len(data) // 2
    part1, part2 = staging / "part1", staging / "part2"
    part1.write_bytes(data[:middle])
    part2.write_bytes(data[middle:])
    return part1, part2


def _append_in_two_sessions(ending, history, utree, sources, procs, staging) -> None:
    part1, part2 = _halves(sources[ending], staging)
    final = utree.root / f"appended.{ending}"
    procs.run(["sh", "-c", 'cat "$1" >> "$2"', "sh", str(part1), str(final)])
    assert_interrupted(final, sources[ending])
    assert_no_row(history, utree.root, f"{ending} after the first append", resumed_later=True)
    procs.run(["sh", "-c", 'cat "$1" >> "$2"', "sh", str(part2), str(final)])
    assert_one_row(history, final, sources[ending])


@pytest.mark.parametrize("ending", ["mp4", "mkv", "mov", "avi"])
def test_appends_in_two_sessions(ending, watched, utree, sources, procs, staging):
    daemon, history = watched
    _append_in_two_sessions(ending, history, utree, sources, procs, staging)


@pytest.mark.parametrize("backend", ["mysql"])
def test_appends_in_two_sessions_on_mariadb(backend, watched, utree, sources, procs, staging):
    daemon, history = watched
    _append_in_two_sessions("mp4", history, utree, sources, procs, staging)
