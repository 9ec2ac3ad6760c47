"""Signals while things go wrong: a reload (SIGHUP) in the middle of a burst and of an outage
loses nothing; a stop (SIGTERM) during an outage ends cleanly at once (a stop while the server
hangs: test_database_outage.py)."""

from __future__ import annotations

import signal
import threading
import time

from tests.faults.helpers import assert_mirrors_disk, burst


def test_reloads_during_a_burst_lose_nothing(db_tree, start_service):
    tree = db_tree
    daemon = start_service()
    writer = threading.Thread(target=burst, args=(tree.root, 3000), kwargs={"subdirs": 10})
    writer.start()
    for _ in range(3):
        time.sleep(0.15)
        daemon.signal(signal.SIGHUP)
    writer.join()
    rows = assert_mirrors_disk(tree, timeout=60)
    assert len(rows) == 3000
    assert daemon.log().count("reloading settings") >= 1
    assert daemon.proc.poll() is None and daemon.stop() == 0


def test_a_reload_during_an_outage_loses_nothing(db_tree, mariadb, start_service):
    tree = db_tree
    daemon = start_service()
    burst(tree.root / "before", 100)
    assert_mirrors_disk(tree)
    mariadb.kill()
    burst(tree.root / "queued", 300)                  # queued in memory when the reload comes
    daemon.notify.wait_for("database unavailable", timeout=20)
    daemon.signal(signal.SIGHUP)
    burst(tree.root / "after-reload", 100)
    time.sleep(1)
    mariadb.start()
    rows = assert_mirrors_disk(tree, timeout=60)
    assert len(rows) == 500
    assert daemon.proc.poll() is None and daemon.stop() == 0


def test_sigterm_during_an_outage_exits_0_promptly(db_tree, mariadb, start_service):
    tree = db_tree
    daemon = start_service()
    mariadb.stop()
    burst(tree.root, 200)                              # rows that cannot be written now
    daemon.notify.wait_for("database unavailable", timeout=20)
    started = time.monotonic()
    assert daemon.stop(timeout=30) == 0
    assert time.monotonic() - started < 5
    mariadb.start()
    again = start_service()                            # the next start registers them
    assert len(assert_mirrors_disk(tree)) == 200
    assert again.stop() == 0
