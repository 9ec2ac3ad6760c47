"""Fixtures of the fault suite: the tree on MariaDB, the server always back up afterwards,
and a tree another user can enter (for a service that runs as `nobody`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.conftest import BASE_URL, Tree
from tests.support.daemon import Daemon
from tests.faults import helpers
from tests.support.capabilities import as_root, skip_unless


@pytest.fixture
def db_tree(tree: Tree, mysql_env: dict[str, str], mariadb) -> Iterator[Tree]:
    """The tree on the production store; the server is running again when the test ends,
    whatever the test did to it."""
    tree.env.update(mysql_env)
    yield tree
    if not mariadb.running:
        mariadb.start()


@pytest.fixture
def open_tree(mysql_env: dict[str, str], mariadb) -> Iterator[Tree]:
    """A tree outside pytest's 0700 temp directory, so that `nobody` can enter it."""
    top = Path(tempfile.mkdtemp(prefix="vfs-faults-"))
    top.chmod(0o755)
    base, work = top / "srv", top / "work"
    root = base / "videos"
    root.mkdir(parents=True)
    work.mkdir()
    helpers.open_up([top, base, root], 0o755)
    work.chmod(0o1777)
    config = work / "empty.toml"
    config.write_text("")
    config.chmod(0o644)
    env = {"VFS_NOTIFIER_CONFIG": str(config), "CLIENT_VIDEO_DIR": str(root), "BASE_PATH": str(base),
           "NGINX_BASE_URL": BASE_URL, "LOG_BASE_DIRECTORY": str(work / "log"),
           "FOLDER_POLL_INTERVAL": "1", "PYTHONPATH": helpers.package_copy(top),
           "PYTHONDONTWRITEBYTECODE": "1", **mysql_env}
    yield Tree(base=base, root=root, work=work, env=env)
    if not mariadb.running:
        mariadb.start()
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def start_as_nobody(open_tree: Tree) -> Iterator[Callable[..., Daemon]]:
    """Start the service as user `nobody` (root only); stopped at teardown."""
    skip_unless(as_root("running the service as another user"))
    started: list[Daemon] = []

    def start(wait_ready: bool = True, **extra: str) -> Daemon:
        daemon = Daemon(open_tree.work, {**open_tree.env, **extra})
        started.append(daemon)
        old_umask = os.umask(0)   # the notify socket must take nobody's datagrams
        try:
            with helpers.service_as(helpers.NOBODY, helpers.NOBODY, open_tree.work):
                daemon.start(wait_ready=False)
        finally:
            os.umask(old_umask)
        if wait_ready:
            daemon.wait_ready()
        return daemon

    yield start
    for daemon in started:
        daemon.kill()
