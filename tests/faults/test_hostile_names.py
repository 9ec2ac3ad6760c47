"""Hostile file names: each is either registered with a correct URL or skipped with one
warning naming it (escaped); never a crash, a truncated row or a wrong one. Names are met
both by the startup walk (files already there) and by events (files written later)."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from urllib.parse import unquote

from tests.conftest import BASE_URL, write_file
from tests.faults.helpers import assert_mirrors_disk, wait_until
from tests.support.media import content_for
from tests.support.table import Table

GOOD = [
    "with space.mp4", "quote's \"double\".mp4", "back\\slash.avi", "new\nline.mp4", "tab\there.mkv",
    "ctrl\x01\x7f.mp4", "hash#tag.mp4", "what?.mov", "100% sure.mkv", "%2F-not-a-slash.mp4",
    "%%25.mp4", "semi;colon&amp=eq+plus.mp4", "colon:at@.mp4", "[brackets]{braces}.mp4",
    "emoji 🎬.mp4", "4-byte 𠀀.mp4", "e\u0301 decomposed.mp4", "\u00e9 decomposed.mp4",
    "right-to-left \u202egnp.mp4", "zero\u200bwidth.mp4", "A.mp4", "a.mp4", "UPPER.MP4", ".mp4",
    "trailing space .mp4", " leading space.mp4", "dots...mp4", "~tilde-_.mp4", "ünïcödé.avi",
]
BAD = [b"latin1-\xe9t\xe9.mp4", b"\xff\xfe.mp4", b"surrogate-\xed\xa0\x80.mp4", b"cut-\xe2\x82.mkv"]
UNRESERVED_OR_ESCAPE = re.compile(r"^[A-Za-z0-9\-._~%/]*$")


def _escaped(raw: bytes) -> str:
    """How the service names a path it cannot store: invalid bytes as \\xNN."""
    return raw.decode("utf-8", "backslashreplace")


def _long_path(parent: Path, total: int, char: str = "L") -> Path:
    """A path of exactly `total` characters below `parent` (components within 255 bytes)."""
    per_dir = 200 // len(char.encode())
    path = str(parent)
    while total - len(path) > per_dir + 12:
        path += "/" + char * per_dir
    name_len = total - len(path) - 1 - len(".mp4")
    return Path(path + "/" + "n" * name_len + ".mp4")


def _populate(directory: Path, tag: str) -> dict[str, list]:
    """Write every hostile case below `directory`; return the ones that must be skipped."""
    for name in GOOD:
        write_file(directory / name, mtime_ago=600)
    bad = []
    for raw in BAD:
        path = os.path.join(os.fsencode(directory), raw)
        with open(path, "wb") as handle:
            handle.write(content_for(path))
        bad.append(os.fsdecode(path))
    bad_dir = os.path.join(os.fsencode(directory), b"dir-\xff-" + tag.encode())
    os.mkdir(bad_dir)
    with open(os.path.join(bad_dir, b"inside.mp4"), "wb") as handle:
        handle.write(content_for("inside.mp4"))
    at_limit = write_file(_long_path(directory / "long", 1024), mtime_ago=600)
    over = write_file(_long_path(directory / "long-over", 1025), mtime_ago=600)
    # Short enough as a path, too long as a URL once é becomes %C3%A9.
    url_over = write_file(_long_path(directory / "accents", 700, "é"), mtime_ago=600)
    assert len(str(at_limit)) == 1024 and len(str(over)) == 1025
    return {"bad": bad, "bad_dir": [os.fsdecode(bad_dir)], "over": [str(over)], "url_over": [str(url_over)]}


def _check(tree, daemon, skipped: dict[str, list], announced: bool) -> None:
    rows = assert_mirrors_disk(tree, timeout=30)
    for row in rows:
        suffix = row.url[len(BASE_URL) + 1:]
        assert row.url.startswith(BASE_URL + "/") and UNRESERVED_OR_ESCAPE.match(suffix), row.url
        assert unquote(suffix, errors="strict") == os.path.relpath(row.path, tree.base)
        assert len(row.path) <= 1024 and len(row.url) <= 1024
    wait_until(lambda: all(_escaped(os.fsencode(p)) in daemon.log() for v in skipped.values() for p in v),
               timeout=10, what="a warning for every skipped path")
    log = daemon.log()
    for path in skipped["bad"]:
        assert log.count(_escaped(os.fsencode(path)) + ": file name is not valid UTF-8") == 1, path
    for path in skipped["bad_dir"]:
        assert log.count(_escaped(os.fsencode(path)) + ": directory name is not valid UTF-8") == 1
    for path in skipped["over"]:
        assert log.count(path + ": path is 1025 characters, the column holds 1024") == 1
    for path in skipped["url_over"]:
        assert log.count(path + ": URL is ") == 1
    if announced:                                       # files from events get a line each (at DEBUG in a burst)
        assert "new\\nline.mp4 as " in log and "new\nline" not in log   # it cannot split a line
    assert daemon.proc.poll() is None


def test_hostile_names_at_startup_and_by_events(store_tree, start_service):
    tree = store_tree
    (tree.root / "live").mkdir()
    at_start = _populate(tree.root / "walked", "walked")
    # At DEBUG each file an event brought is a line of its own, even in a burst.
    daemon = start_service(VFS_NOTIFIER_LOG_LEVEL="debug")
    _check(tree, daemon, at_start, announced=False)
    by_events = _populate(tree.root / "live", "live")
    _check(tree, daemon, {k: at_start[k] + by_events[k] for k in at_start}, announced=True)
    # Names equal under the column's collation (case, accents, trailing spaces) are still
    # different files: deleting one leaves the other's row alone.
    for name in ["A.mp4", "\u00e9 decomposed.mp4", "trailing space .mp4"]:
        (tree.root / "live" / name).unlink()
    rows = assert_mirrors_disk(tree)
    paths = {r.path for r in rows}
    assert str(tree.root / "live" / "a.mp4") in paths
    assert str(tree.root / "live" / "e\u0301 decomposed.mp4") in paths
    # A restart finds every one of them registered already: no duplicate.
    assert daemon.stop() == 0
    again = start_service()
    assert_mirrors_disk(tree)
    assert again.proc.poll() is None
    again.signal(signal.SIGTERM)
    assert again.wait_exit() == 0


def test_1024_characters_of_many_bytes_are_stored_exactly(store_tree, start_service):
    """The columns count characters, not bytes: a path of exactly 1,024 characters holding
    4-byte emoji (over 1,100 bytes) is stored whole; one character more is skipped."""
    tree = store_tree
    # A long BASE_PATH (the root must stay within main_dir's 512) keeps the URL, which grows
    # 12 characters per emoji, within the column too.
    deep = tree.base
    while len(str(deep)) < 480:
        deep = deep / ("b" * min(200, 480 - len(str(deep)) - 1))
    root = deep / "v"
    emoji = "\U0001F3AC" * 30

    def path_of(chars: int) -> Path:
        """root/aaa.../bbb.../<30 emoji and a's>.mp4 with `chars` characters in all."""
        room = chars - len(str(root)) - len("/" + emoji + ".mp4")
        dirs = []
        while room > 200:
            dirs.append("a" * 199)
            room -= 200
        return root.joinpath(*dirs, emoji + "c" * room + ".mp4")
    exact, over = write_file(path_of(1024)), write_file(path_of(1025))
    assert len(str(exact)) == 1024 and len(os.fsencode(str(exact))) > 1100
    env = {**tree.env, "BASE_PATH": str(deep), "CLIENT_VIDEO_DIR": str(root)}
    daemon = start_service(env=env)
    rows = Table(env).wait_for_paths([exact])
    assert rows[0].path == str(exact) and len(rows[0].url) <= 1024
    assert unquote(rows[0].url[len(BASE_URL) + 1:]) == os.path.relpath(str(exact), deep)
    wait_until(lambda: "path is 1025 characters" in daemon.log(), timeout=10, what="the skip warning")
    assert str(over) in daemon.log() and "refused" not in daemon.log()
    assert daemon.stop() == 0
