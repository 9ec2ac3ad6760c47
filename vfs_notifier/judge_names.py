"""The judge's first rule, on names alone (pure): which paths below a root are candidates at
all, and the names download tools give their control files. Part of the judge (judge.py
re-exports every name here); asked per file, so cheap tests come first.
"""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from typing import Iterable, Optional

# Endings that name a download or copy in progress. "a.mp4.part" is not a video by its
# ending anyway; the suffix gives the better reason. "a.part.mp4" IS a candidate: its name
# ends in a video ending, and its framing decides (yt-dlp's "x.temp.mp4" is a real MP4).
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download",
                    ".opdownload", ".aria2", ".lftp-pget-status", ".filepart", ".!qb", ".!ut",
                    ".bc!", ".swp", "~")
# Control files a download tool keeps beside NAME while it fills NAME, and removes when NAME is
# whole; the tool, for the reason given while one is there.
CONTROL_FILES = {".aria2": "aria2c", ".lftp-pget-status": "lftp pget"}


class Names:
    """Which relative paths are candidates at all: a pure rule on names."""

    def __init__(self, extensions: Iterable[str], ignore: Iterable[str] = ()) -> None:
        self.extensions = frozenset(e.lower().lstrip(".") for e in extensions)
        self.ignore = tuple(ignore)

    def not_candidate(self, relative: str) -> Optional[str]:
        """None for a candidate; else why not. `relative` is the path below the watched root."""
        directory, _, name = relative.rpartition("/")
        if name.startswith("."):
            return "a hidden file"
        if directory.startswith(".") or "/." in directory:   # a cheap test first: asked per file
            for part in directory.split("/"):
                if part.startswith(".") and part not in (".", ".."):
                    return f"inside the hidden directory {part}"
        lower = name.lower()
        if lower.endswith(PARTIAL_SUFFIXES):
            suffix = next(s for s in PARTIAL_SUFFIXES if lower.endswith(s))
            return f"a partial download's name ({suffix})"
        dot = lower.rfind(".")
        if dot < 0 or lower[dot + 1:] not in self.extensions:
            return "not a video file name"
        for pattern in self.ignore:
            if fnmatchcase(relative, pattern) or fnmatchcase(name, pattern):
                return f"ignored by the pattern {pattern!r}"
        return None


def download_target(path: str) -> Optional[str]:
    """The download a tool's control file belongs to ("a.mp4.aria2" -> "a.mp4",
    "a.mp4.lftp-pget-status" -> "a.mp4"), None for any other name or path: when the control
    file goes, that file is judged again."""
    for suffix in CONTROL_FILES:
        if path.endswith(suffix) and len(path) > len(suffix) and path[-len(suffix) - 1] != "/":
            return path[:-len(suffix)]
    return None


def control_file(path: str) -> Optional[str]:
    """The suffix of a download tool's control file beside `path`, None when there is none."""
    for suffix in CONTROL_FILES:
        if _exists(path + suffix):
            return suffix
    return None


def _exists(path: str) -> bool:
    try:
        os.lstat(path)
    except OSError:
        return False
    return True
