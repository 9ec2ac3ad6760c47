"""Fixtures: a real MariaDB server for the session, real directories, the real service process;
and the suite's housekeeping: what counts as slow, and temporary directories that do not pile up."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import scratch  # noqa: E402
from tests.support.capabilities import has_free_space, skip_unless  # noqa: E402
from tests.support.daemon import Daemon  # noqa: E402
from tests.support.mariadb import MariaDB  # noqa: E402
from tests.support.media import write_video  # noqa: E402
from tests.support.table import Table  # noqa: E402

BASE_URL = "http://media.test/videos"

# The layers that are slow by nature: whole scenarios against the real daemon, a real MariaDB,
# real upload tools, containers. `./scripts/test --quick` (pytest -m "not slow") leaves them out.
SLOW_DIRECTORIES = ("e2e", "faults", "ha", "uploads")
# A test that starts the real service (and waits for READY) is an integration test wherever
# it lives.
SLOW_FIXTURES = ("start_service", "start_as_nobody", "watched")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).resolve().parent
    for item in items:
        relative = item.path.resolve().relative_to(tests)
        if relative.parts[0] in SLOW_DIRECTORIES or set(SLOW_FIXTURES) & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


# --- temporary directories: removed as the run goes ---------------------------------------
# pytest 7.2 (Debian 12) keeps every test's tmp_path, for three runs; the retention settings
# that would stop that came in pytest 7.3. So: a test's directory goes when the test passed or
# was skipped, a failed test's stays for a look, and a run that passed leaves nothing behind.
# VFS_NOTIFIER_TEST_KEEP_TMP=1 keeps everything.

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    scratch.remember(item, outcome.get_result())


@pytest.fixture
def tmp_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pytest's tmp_path, removed at the end of a test that did not fail."""
    path = scratch.make(request, tmp_path_factory)
    yield path
    if not scratch.failed(request.node):
        scratch.remove_test_dir(path)


@pytest.hookimpl(trylast=True)   # after the session's fixtures (mariadbd) are torn down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus == 0:
        scratch.remove_session_dirs(session.config)


@pytest.fixture
def room_for(tmp_path: Path) -> Iterator[Callable[..., None]]:
    """For a test that writes hundreds of MB: `room_for(megabytes, *paths)` skips it, saying so,
    unless tmp_path's file system has that much free; the paths it names are removed when the
    test ends, passed or failed, so a failure never leaves GBs in /tmp."""
    hogs: list[Path] = []

    def need(megabytes: int, *paths: Path) -> None:
        skip_unless(has_free_space(tmp_path, megabytes))
        hogs.extend(paths)

    yield need
    for path in hogs:
        scratch.remove(path)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    """One mariadbd for the whole session. Failing to start it fails the tests: never a skip."""
    server = MariaDB(tmp_path_factory.mktemp("mariadb"))
    server.install()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mysql_env(mariadb: MariaDB) -> Iterator[dict[str, str]]:
    """MYSQL_* settings for a fresh database and user; the server is restarted if a test stopped
    it. The database goes with the test (the server's datadir would grow by every test's)."""
    if not mariadb.running:
        mariadb.start()
    env = mariadb.new_database()
    yield env
    mariadb.drop_database(env)


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
