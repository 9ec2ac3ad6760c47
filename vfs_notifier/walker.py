"""Directory walks: every video file below a directory, as candidate paths.

A walk places a watch on each directory before it lists it, so that nothing written
after the listing can be missed. It never follows a symbolic link: a link cannot make
a file outside the tree, or a loop, part of it.
"""

from __future__ import annotations

import os
import stat
from typing import Callable, Iterator, NamedTuple, Optional


class Found(NamedTuple):
    directory: str
    name: str
    mtime: float   # 0.0 when the walk was told not to stat files


class WalkProblem(NamedTuple):
    path: str
    problem: str


def walk(top: str, extensions: frozenset[str],
         before_listing: Callable[[str], Optional[str]],
         problems: list[WalkProblem],
         want_mtime: Callable[[str, str], bool] = lambda d, n: True) -> Iterator[Found]:
    """Yield every regular file below `top` whose name ends in one of `extensions`.

    `before_listing(dir)` runs before each directory is read (to watch it); a string it
    returns is a problem to report, and the directory is still listed. Directories that
    cannot be read or whose names are not UTF-8 are reported in `problems` and skipped.
    `want_mtime(dir, name)` says whether a file needs a stat (known files do not).
    """
    stack = [top]
    while stack:
        directory = stack.pop()
        try:
            directory.encode("utf-8")
        except UnicodeEncodeError:
            problems.append(WalkProblem(directory, "directory name is not valid UTF-8; not watched"))
            continue
        trouble = before_listing(directory)
        if trouble:
            problems.append(WalkProblem(directory, trouble))
        try:
            entries = os.scandir(directory)
        except FileNotFoundError:
            continue  # gone already: its removal is reported as such
        except OSError as err:
            problems.append(WalkProblem(directory, f"cannot read: {err.strerror}"))
            continue
        with entries:
            subdirs = []
            for entry in _entries(entries, directory, problems):
                name = entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append(entry.path)
                        continue
                    dot = name.rfind(".")
                    if dot < 0 or name[dot + 1:].lower() not in extensions:
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    mtime = 0.0
                    if want_mtime(directory, name):
                        st = entry.stat(follow_symlinks=False)
                        if not stat.S_ISREG(st.st_mode):
                            continue
                        mtime = st.st_mtime
                except FileNotFoundError:
                    continue  # deleted while we looked
                except OSError as err:
                    problems.append(WalkProblem(entry.path, f"cannot stat: {err.strerror}"))
                    continue
                yield Found(directory, name, mtime)
            stack.extend(reversed(subdirs))


def _entries(entries: Iterator[os.DirEntry], directory: str,
             problems: list[WalkProblem]) -> Iterator[os.DirEntry]:
    """The entries of one directory, ending quietly (with a problem noted) if reading fails."""
    try:
        yield from entries
    except OSError as err:
        problems.append(WalkProblem(directory, f"cannot read: {err.strerror}"))
