"""Directory walks: every video file below a directory, as candidate paths.

A walk places a watch on each directory before it lists it, so that nothing written
after the listing can be missed. It never follows a symbolic link: a link cannot make
a file outside the tree, or a loop, part of it.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator, NamedTuple, Optional

from .judge import download_target


class Found(NamedTuple):
    directory: str
    name: str
    beside_control: bool    # the listing holds a control file (NAME.aria2, NAME.lftp-pget-status)


class WalkProblem(NamedTuple):
    path: str
    problem: str


def walk(top: str, extensions: frozenset[str],
         before_listing: Callable[[str], Optional[str]],
         problems: list[WalkProblem],
         listed: Optional[Callable[[str, bool], None]] = None) -> Iterator[Found]:
    """Yield every regular file below `top` whose name ends in one of `extensions`.

    `before_listing(dir)` runs before each directory is read (to watch it); a string it
    returns is a problem to report, and the directory is still listed. `listed(dir,
    controls)` runs once it is read whole, before its files are yielded: `controls` says
    whether any download tool's control file is there. Directories that cannot be read or whose
    names are not UTF-8 are reported in `problems` and skipped. Only the directory
    entries' types are read (no stat per file): most files of a warm restart are
    registered already and need nothing more.
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
            subdirs, videos, controls = [], [], set()
            for entry in _entries(entries, directory, problems):
                name = entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append(entry.path)
                        continue
                    dot = name.rfind(".")
                    if dot < 0:
                        continue
                    if name[dot + 1:].lower() not in extensions:
                        download = download_target(name)
                        if download is not None:
                            controls.add(download)
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue
                except OSError:
                    continue  # deleted while we looked (is_* stat only where d_type is unknown)
                videos.append(name)
        # The whole listing first: a control file may be listed after its download.
        if listed is not None:
            listed(directory, bool(controls))
        for name in videos:
            yield Found(directory, name, name in controls)
        stack.extend(reversed(subdirs))


def _entries(entries: Iterator[os.DirEntry], directory: str,
             problems: list[WalkProblem]) -> Iterator[os.DirEntry]:
    """The entries of one directory, ending quietly (with a problem noted) if reading fails."""
    try:
        yield from entries
    except OSError as err:
        problems.append(WalkProblem(directory, f"cannot read: {err.strerror}"))
