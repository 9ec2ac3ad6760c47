"""rows: which files are videos, and the exact row and URL each one gets."""

from __future__ import annotations

import random
from urllib.parse import quote, unquote

import pytest

from vfs_notifier.rows import COLUMN_CHARS, RowMaker, Unstorable, is_video, printable, quote_segment, url_for
from vfs_notifier.settings import Root

EXT = frozenset({"mp4", "avi", "mov", "mkv"})
ROOT = Root(path="/srv/media/videos",
            base_url="http://h/m", base_path="/srv/media")


@pytest.mark.parametrize("name, video", [
    ("a.mp4", True), ("A.MP4", True), ("b.Mkv", True), ("c.avi", True), ("d.mov", True),
    ("e.mp4.part", False), (".e.mp4.Xy12Ab", False), ("mp4", False), ("f.mp3", False), ("g.webm", False),
])
def test_is_video_in_any_letter_case(name, video):
    assert is_video(name, EXT) is video


@pytest.mark.parametrize("name, encoded", [
    ("plain.mp4", "plain.mp4"),
    ("with space.mp4", "with%20space.mp4"),
    ("quote'\"s.mp4", "quote%27%22s.mp4"),
    ("hash#1.mp4", "hash%231.mp4"),
    ("what?.mp4", "what%3F.mp4"),
    ("100%.mp4", "100%25.mp4"),
    ("café.mp4", "caf%C3%A9.mp4"),
    ("emoji😀.mp4", "emoji%F0%9F%98%80.mp4"),
    ("semi;colon&amp=.mp4", "semi%3Bcolon%26amp%3D.mp4"),
    ("new\nline.mp4", "new%0Aline.mp4"),
    ("back\\slash.mp4", "back%5Cslash.mp4"),
])
def test_each_segment_is_percent_encoded(name, encoded):
    row = RowMaker(ROOT).row("/srv/media/videos/sub dir", name)
    assert row.path == f"/srv/media/videos/sub dir/{name}"
    assert row.url == f"http://h/m/videos/sub%20dir/{encoded}"
    assert row.main_dir == "/srv/media/videos"
    assert unquote(row.url[len("http://h/m/"):]) == f"videos/sub dir/{name}"


def test_quote_segment_is_exactly_urllib_quote_with_nothing_safe():
    # Our table-driven quoting must never drift from the standard library's, for any text.
    rng = random.Random(9)
    planes = [(0, 0x7F), (0x80, 0x7FF), (0x800, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]
    names = ["".join(chr(rng.randint(*rng.choice(planes))) for _ in range(rng.randint(0, 24)))
             for _ in range(5000)] + [chr(c) for c in range(0x100)]
    for name in names:
        assert quote_segment(name) == quote(name, safe="", errors="strict"), repr(name)
    with pytest.raises(UnicodeEncodeError):      # a name that was not UTF-8 on disk
        quote_segment("bad\udcff.mp4")


def test_copy_row_names_the_copy_below_copy_to_with_the_watched_root_as_main_dir():
    root = Root(path="/srv/media/client", base_url="http://h/m", base_path="/srv/media")
    row = RowMaker(root, copy_to="/srv/media/internal").row("/srv/media/client/x y", "a #1.mp4")
    assert row == ("/srv/media/client", "/srv/media/internal/x y/a #1.mp4",
                   "http://h/m/internal/x%20y/a%20%231.mp4")
    assert RowMaker(root, "/srv/media/internal").stored_path("/srv/media/client", "b.mkv") == \
        "/srv/media/internal/b.mkv"


def test_a_path_outside_the_root_is_unstorable():
    with pytest.raises(Unstorable, match="outside"):
        RowMaker(ROOT).row("/srv/media/elsewhere", "a.mp4")


def test_invalid_utf8_is_unstorable():
    bad = b"bad\xff.mp4".decode("utf-8", "surrogateescape")
    with pytest.raises(Unstorable, match="not valid UTF-8"):
        RowMaker(ROOT).row("/srv/media/videos", bad)
    assert printable("/x/" + bad) == "/x/bad\\xff.mp4"


def test_paths_and_urls_longer_than_the_column_are_unstorable():
    maker = RowMaker(ROOT)
    room = COLUMN_CHARS - len("/srv/media/videos/")
    assert len(maker.row("/srv/media/videos", "a" * (room - 4) + ".mp4").path) == COLUMN_CHARS
    with pytest.raises(Unstorable, match="path is 1025 characters"):
        maker.row("/srv/media/videos", "a" * (room - 3) + ".mp4")
    with pytest.raises(Unstorable, match="URL is"):
        maker.row("/srv/media/videos", "é" * 200 + ".mp4")   # 200 characters, 1,200 in the URL


def test_url_for_base_path_itself():
    assert url_for("/srv/media/a b.mp4", "/srv/media", "http://h/m/") == "http://h/m/a%20b.mp4"


def test_printable_escapes_control_characters():
    assert printable("/x/a\nb.mp4") == "/x/a\\nb.mp4"
