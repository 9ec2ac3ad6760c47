"""A turn that fails (a bug) costs that turn only: said once with its traceback, a walk at
most once a minute. The real Service on the embedded store and a real directory; the fault
is a gate step that raises, as a bug in it would."""

from __future__ import annotations

import logging

import pytest

from vfs_notifier.logs import Logs
from vfs_notifier.service import Service
from vfs_notifier.settings import resolve


@pytest.fixture
def service(tmp_path):
    root = tmp_path / "srv" / "videos"
    root.mkdir(parents=True)
    env = {"CLIENT_VIDEO_DIR": str(root), "BASE_PATH": str(tmp_path / "srv"), "NGINX_BASE_URL": "http://h/v",
           "VFS_NOTIFIER_SQLITE_PATH": str(tmp_path / "db.sqlite3")}
    service = Service(resolve({}, "(none)", env), Logs())
    service.start()
    yield service
    service.close()


def test_a_bug_met_every_turn_is_said_once_and_walks_once_a_minute(service, caplog, monkeypatch):
    walks = []
    monkeypatch.setattr(service.gate, "reconcile_all", lambda: walks.append(1))

    def broken(budget) -> None:
        raise RuntimeError("a bug in the gate")
    monkeypatch.setattr(service.gate, "step", broken)
    with caplog.at_level(logging.DEBUG, logger="vfs_notifier"):
        for _ in range(200):
            service.turn()
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert service.turn_errors == 200
    assert len(tracebacks) == 1 and "a bug in the gate" in str(tracebacks[0].exc_info[1])
    assert len(walks) == 1                              # not one a turn


def test_another_bug_is_said_too(service, caplog, monkeypatch):
    errors = iter([RuntimeError("one"), KeyError("two"), RuntimeError("one")])

    def broken(budget) -> None:
        raise next(errors)
    monkeypatch.setattr(service.gate, "step", broken)
    with caplog.at_level(logging.ERROR, logger="vfs_notifier"):
        for _ in range(3):
            service.turn()
    assert [str(r.exc_info[1]) for r in caplog.records if r.exc_info] == ["one", "'two'"]
