"""Fixtures: a real MariaDB server for the session, real directories, the real service process."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.daemon import Daemon  # noqa: E402
from tests.support.mariadb import MariaDB  # noqa: E402
from tests.support.media import write_video  # noqa: E402
from tests.support.table import Table  # noqa: E402

BASE_URL = "http://media.test/videos"


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    """One mariadbd for the whole session. Failing to start it fails the tests: never a skip."""
    server = MariaDB(tmp_path_factory.mktemp("mariadb"))
    server.install()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mysql_env(mariadb: MariaDB) -> dict[str, str]:
    """MYSQL_* settings for a fresh database and user; the server is restarted if a test stopped it."""
    if not mariadb.running:
        mariadb.start()
    return mariadb.new_database()


@dataclass
class Tree:
    base: Path                 # BASE_PATH
    root: Path                 # CLIENT_VIDEO_DIR, below base
    work: Path                 # logs, sockets, the SQLite file
    env: dict[str, str] = field(default_factory=dict)

    @property
    def table(self) -> Table:
        return Table(self.env)


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """A watched root below BASE_PATH, and the environment that configures the service for it."""
    base, work = tmp_path / "srv", tmp_path / "work"
    root = base / "videos"
    root.mkdir(parents=True)
    work.mkdir()
    config = work / "empty.toml"
    config.write_text("")
    env = {
        "VFS_NOTIFIER_CONFIG": str(config),   # never the machine's /etc/vfs-notifier.toml
        "CLIENT_VIDEO_DIR": str(root),
        "BASE_PATH": str(base),
        "NGINX_BASE_URL": BASE_URL,
        "LOG_BASE_DIRECTORY": str(work / "log"),
        "VFS_NOTIFIER_SQLITE_PATH": str(work / "videos.sqlite3"),
        "FOLDER_POLL_INTERVAL": "1",
    }
    return Tree(base=base, root=root, work=work, env=env)


@pytest.fixture(params=["sqlite", "mysql"])
def store_tree(request: pytest.FixtureRequest, tree: Tree) -> Tree:
    """The same tree with either store: both must behave alike."""
    if request.param == "mysql":
        tree.env.update(request.getfixturevalue("mysql_env"))
    return tree


@pytest.fixture
def start_service(tree: Tree) -> Iterator[Callable[..., Daemon]]:
    """Start the real service (waiting for READY=1); every one started is stopped afterwards."""
    started: list[Daemon] = []

    def start(env: dict[str, str] | None = None, wait_ready: bool = True, **extra: str) -> Daemon:
        daemon = Daemon(tree.work, {**(env or tree.env), **extra})
        started.append(daemon)
        return daemon.start(wait_ready=wait_ready)

    yield start
    for daemon in started:
        daemon.kill()


def write_file(path: Path, data: bytes | None = None, mtime_ago: float = 0) -> Path:
    """Write and close a file (and optionally age it, as a file from an earlier day).

    Without `data` it holds what its name says: a real video container made by ffmpeg for a
    video ending (a.mkv holds Matroska; "movie.mp4.part" holds MP4), plain text otherwise.
    """
    return write_video(path, mtime_ago=mtime_ago or None, data=data)
