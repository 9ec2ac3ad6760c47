"""Test directories that go when they have served: the suite must fit a 2 GB tmpfs /tmp.

pytest 7.2 (Debian 12's) keeps every test's tmp_path and the last three runs; one root run
wrote more than 5 GB there. tests/conftest.py removes a test's directory when the test did not
fail, and a passing run's whole base directory at its end; this module does the removing,
carefully: never across a mount point (a test's tmpfs or bind mount left behind by a failure)
and through the modes and flags tests set on purpose.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path
from typing import Optional

import pytest

KEEP = os.environ.get("VFS_NOTIFIER_TEST_KEEP_TMP", "") not in ("", "0")

_REPORTS = pytest.StashKey[dict]()


def make(request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> Path:
    """The directory pytest's own tmp_path would be (its naming, so failures are found by name)."""
    name = re.sub(r"[\W]", "_", request.node.name)[:30]
    return factory.mktemp(name, numbered=True)


def remove_test_dir(path: Path) -> None:
    """A test's directory, and the `<name>current` link pytest made beside it."""
    if remove(path) is None:
        link = path.with_name(path.name.rstrip("0123456789") + "current")
        if link.is_symlink() and not link.exists():
            link.unlink()


def remember(item: pytest.Item, report: pytest.TestReport) -> None:
    item.stash.setdefault(_REPORTS, {})[report.when] = report


def failed(item: pytest.Item) -> bool:
    """Whether the test's setup or call failed (its teardown has not run yet when asked)."""
    return any(report.failed for report in item.stash.get(_REPORTS, {}).values())


def _mounts_under(path: Path) -> list[str]:
    top = str(path.resolve())
    found = []
    try:
        with open("/proc/self/mountinfo") as mountinfo:
            for line in mountinfo:
                point = line.split()[4].replace("\\040", " ")
                if point == top or point.startswith(top + "/"):
                    found.append(point)
    except OSError:
        pass
    return found


def _let_in(function, path: str, _exc_info) -> None:
    """rmtree's error handler: a test may leave a directory without write or search rights."""
    parent = os.path.dirname(path)
    try:
        for target in (parent, path):
            if os.path.isdir(target) and not os.path.islink(target):
                os.chmod(target, stat.S_IRWXU)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass   # an immutable file, say: left, and harmless


def remove(path: Path) -> Optional[str]:
    """Remove a file or tree; None when done, else why it was left."""
    if KEEP:
        return "VFS_NOTIFIER_TEST_KEEP_TMP is set"
    if not os.path.lexists(path):
        return None
    if os.path.isdir(path) and not os.path.islink(path):
        mounts = _mounts_under(path)
        if mounts:
            return f"left: still mounted below it: {', '.join(mounts)}"
        shutil.rmtree(path, onerror=_let_in)
    else:
        try:
            os.unlink(path)
        except OSError as err:
            return f"left: {err.strerror}"
    return None


def remove_session_dirs(config: pytest.Config) -> None:
    """At the end of a run that passed: its whole base directory (the server's datadir, the
    session's sources; the tests' own are gone already)."""
    factory = getattr(config, "_tmp_path_factory", None)
    base = getattr(factory, "_basetemp", None)   # None: the run made no temporary directory
    if base is not None and config.getoption("basetemp", None) is None:
        remove(base)
