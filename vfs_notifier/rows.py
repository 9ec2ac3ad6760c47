"""What a file's row is: is it a video, what is its URL, can the table store it.

Pure functions of a path and its root's settings; no disk, no database.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import NamedTuple

from .settings import Root

# `des_video_path` and `des_url` are varchar(1024): MySQL counts characters, not bytes.
COLUMN_CHARS = 1024


class Row(NamedTuple):
    main_dir: str
    path: str
    url: str


class Unstorable(ValueError):
    """The file is a video, but no correct row can be written for it."""


def is_video(name: str, extensions: frozenset[str]) -> bool:
    """True for a name ending in one of `extensions` (lower case), in any letter case."""
    dot = name.rfind(".")
    return dot >= 0 and name[dot + 1:].lower() in extensions


def printable(path: str) -> str:
    """A path as one log line can show it: invalid UTF-8 as \\xNN, control characters escaped."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return repr(text)[1:-1] if not text.isprintable() else text


# Every byte of a name's UTF-8 but RFC 3986's unreserved characters is percent-encoded, so
# '/', '?', '#', '%' and ';' inside a name can never change the URL's meaning: exactly
# urllib.parse.quote(segment, safe=""), by a table of the 256 bytes' forms rather than a
# Python call per byte (a cold start quotes 100,000 names; this takes 60 % of quote's time).
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_BYTE_IN_URL = tuple(chr(byte) if byte in _UNRESERVED else f"%{byte:02X}" for byte in range(256))


def quote_segment(segment: str) -> str:
    """`segment` percent-encoded for a URL path; UnicodeEncodeError if it is not valid
    Unicode (a name that was not UTF-8 on disk)."""
    return "".join(map(_BYTE_IN_URL.__getitem__, segment.encode("utf-8")))


class RowMaker:
    """Makes rows for one root. Directory prefixes are cached: a walk asks per directory.

    With `copy_to` (copy mode) a row names the file's copy instead of the file: the same
    path below `copy_to` as the file has below its root, its URL made from BASE_PATH like
    any other, and `main_dir` still the watched root. Everything a row is asked for
    (the path the registrar dedups on, the path and URL written) is then the copy's.
    """

    def __init__(self, root: Root, copy_to: str = "") -> None:
        self.root = root
        self.copy_to = copy_to
        self._url_prefix = lru_cache(maxsize=4096)(self._directory_url)
        self._path_prefix = lru_cache(maxsize=4096)(self._stored_directory)

    def _stored_directory(self, watch_dir: str) -> str:
        """The directory as rows name it: itself, or in copy mode its copy's directory."""
        root = self.root
        if watch_dir != root.path and not watch_dir.startswith(root.path + "/"):
            raise Unstorable("outside its watched root")
        if not self.copy_to:
            return watch_dir
        return self.copy_to + watch_dir[len(root.path):]

    def _directory_url(self, stored_dir: str) -> str:
        root = self.root
        if stored_dir == root.base_path:
            return root.base_url + "/"
        if not stored_dir.startswith(root.base_path.rstrip("/") + "/"):
            raise Unstorable(f"not below BASE_PATH {root.base_path}")
        relative = stored_dir[len(root.base_path.rstrip("/")) + 1:]
        try:
            encoded = "/".join(quote_segment(s) for s in relative.split("/"))
        except UnicodeEncodeError:
            raise Unstorable("directory name is not valid UTF-8") from None
        return root.base_url + "/" + encoded + "/"

    def stored_path(self, watch_dir: str, name: str) -> str:
        """The path a row names, without making the row."""
        return self._path_prefix(watch_dir) + "/" + name

    def stored_directory(self, watch_dir: str) -> str:
        """The directory as rows name it (in place: `watch_dir` itself, the same string; a
        walk asks this once per directory); Unstorable outside the root."""
        return self._path_prefix(watch_dir)

    def row(self, watch_dir: str, name: str) -> Row:
        """The row for file `name` in directory `watch_dir` below the root."""
        stored_dir = self._path_prefix(watch_dir)
        url_prefix = self._url_prefix(stored_dir)
        try:
            url = url_prefix + quote_segment(name)
        except UnicodeEncodeError:
            raise Unstorable("file name is not valid UTF-8") from None
        path = stored_dir + "/" + name
        if len(path) > COLUMN_CHARS:
            raise Unstorable(f"path is {len(path)} characters, the column holds {COLUMN_CHARS}")
        if len(url) > COLUMN_CHARS:
            raise Unstorable(f"URL is {len(url)} characters, the column holds {COLUMN_CHARS}")
        return Row(self.root.path, path, url)

    def directory_row(self, watch_dir: str) -> Row:
        """A directory as rows below it name it: its stored path and its URL (no trailing '/')."""
        stored_dir = self._path_prefix(watch_dir)
        return Row(self.root.path, stored_dir, self._url_prefix(stored_dir).rstrip("/"))

    def row_for_path(self, path: str) -> Row:
        """The row for the file at `path` below the root (in copy mode: its copy's row)."""
        directory, _, name = path.rpartition("/")
        return self.row(directory, name)


def url_for(path: str, base_path: str, base_url: str) -> str:
    """The URL of a stored path: base_url + '/' + its path below base_path, percent-encoded."""
    root = Root(path=base_path, base_url=base_url.rstrip("/"), base_path=base_path)
    return RowMaker(root).row_for_path(path).url
