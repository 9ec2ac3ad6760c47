"""Files written by appends in two sessions (`cat part1 >> f`, later `cat part2 >> f`):
each session ends with a close, so events cannot tell; after part 1 there must be no row,
after part 2 exactly one. All four containers at once (each cut in the middle of its
media), so that one wait covers them."""

from __future__ import annotations

from tests.uploads.support import (BOTH_STORES, assert_interrupted, assert_no_row, assert_one_row)

ENDINGS = ("mp4", "mkv", "mov", "avi")


def _append(procs, part, final) -> None:
    procs.run(["sh", "-c", 'cat "$1" >> "$2"', "sh", str(part), str(final)])


@BOTH_STORES
def test_appends_in_two_sessions(backend, watched, utree, sources, procs, staging):
    daemon, history = watched
    halves = {}
    for ending in ENDINGS:
        data = sources[ending].read_bytes()
        middle = len(data) // 2
        part1, part2 = staging / f"{ending}.part1", staging / f"{ending}.part2"
        part1.write_bytes(data[:middle])
        part2.write_bytes(data[middle:])
        halves[ending] = (part1, part2, utree.root / f"appended.{ending}")
    for ending, (part1, _, final) in halves.items():
        _append(procs, part1, final)
        assert_interrupted(final, sources[ending])
    assert_no_row(history, utree.root, "after the first appends", resumed_later=True)
    for part1, part2, final in halves.values():
        _append(procs, part2, final)
    finals = [final for _, _, final in halves.values()]
    for ending, final in zip(ENDINGS, finals):
        assert final.read_bytes() == sources[ending].read_bytes(), f"{final} differs from its source"
    assert_one_row(history, finals[0], sources[ENDINGS[0]], others=finals[1:])
