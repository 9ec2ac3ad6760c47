"""Fixtures of the upload cases: real videos, a local sshd, a resumable throttled HTTP
server, the tools' processes, and the table watched from the first moment of each case."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.conftest import Tree
from tests.support.daemon import Daemon
from tests.uploads import media, sshd as sshd_module
from tests.uploads.http_range import RangeServer
from tests.uploads.support import Processes, RowHistory, need

# Server-side pace of /slow/ URLs: a 5 MB source takes about 5 s, so a kill after the
# first few hundred KB lands well inside the transfer.
HTTP_RATE = 1_000_000


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(*tools): skip, naming the tool, when one is not installed")


@pytest.fixture(autouse=True)
def _needed_tools(request: pytest.FixtureRequest) -> None:
    """Skip before the service is started when a case's tool is missing (@needs(...))."""
    for marker in request.node.iter_markers("needs"):
        need(*marker.args)


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> media.Sources:
    """mp4, mkv, mov and avi of the same 20 s H.264 clip, about 5 MB each, made once."""
    if not media.ffmpeg():
        pytest.skip("ffmpeg not installed (Debian package ffmpeg): the cases need real videos")
    return media.make_sources(tmp_path_factory.mktemp("sources"))


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd_module.Sshd]:
    reason = sshd_module.missing_tools()
    if reason:
        pytest.skip(reason)
    server = sshd_module.Sshd(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RangeServer]:
    server = RangeServer(tmp_path_factory.mktemp("http"), rate=HTTP_RATE).start()
    yield server
    server.stop()


@pytest.fixture
def procs(tree: Tree) -> Iterator[Processes]:
    """Start tools through this; whatever is still running at the end is killed."""
    logs = tree.work / "tools"
    logs.mkdir(exist_ok=True)
    processes = Processes(logs)
    yield processes
    processes.cleanup()


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    """A directory outside the watched tree (where uploads come from)."""
    path = tmp_path / "staging"
    path.mkdir()
    return path


@pytest.fixture
def backend() -> str:
    """SQLite unless a case parametrizes `backend` (support.BOTH_STORES) to MariaDB too."""
    return "sqlite"


@pytest.fixture
def utree(tree: Tree, backend: str, request: pytest.FixtureRequest) -> Tree:
    """The tree on the store the case asks for (as tests/conftest.py's store_tree does)."""
    if backend == "mysql":
        tree.env.update(request.getfixturevalue("mysql_env"))
    return tree


@pytest.fixture
def watched(utree: Tree, start_service: Callable[..., Daemon]) -> Iterator[tuple[Daemon, RowHistory]]:
    """The service running on the tree, and the table watched from before the first upload
    starts."""
    daemon = start_service()
    history = RowHistory(utree.table).start()
    yield daemon, history
    history.stop()
