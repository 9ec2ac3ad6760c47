"""The holder goes away (SIGKILL) or stalls past its lease (SIGSTOP, also in the middle of a
write): the standby takes over within the lease plus one poll; a stalled holder that wakes up
commits nothing and stands by (issue 22). On one MariaDB server and on Galera, the two
instances through two nodes. The takeover times are printed ("[ha] ...")."""

from __future__ import annotations

import contextlib
import signal
import time

import pymysql

from tests.faults.helpers import wait_until
from tests.ha.backends import LEASE, POLL, SLACK, standing_by
from tests.ha.checks import (exactly_one_writer, holder_and_standby, holder_of, one_row_each, report_seconds,
                             wait_holder, write_videos)


def test_sigkill_the_holder_the_standby_takes_over_within_lease_and_poll(tree, servers, instances, capsys):
    holder, standby, files = holder_and_standby(tree, servers, instances, 5)
    _, token = holder_of(servers, tree.root)

    killed = time.monotonic()
    holder.kill()
    arriving = write_videos(tree.root, 5, "b")          # while nobody holds the root
    wait_holder(servers, instances, tree.root, [standby], timeout=LEASE + POLL + 10)
    took = time.monotonic() - killed
    one_row_each(servers, instances, files + arriving, hold=1.0)
    landed = time.monotonic() - killed
    report_seconds(capsys, servers, "takeover after SIGKILL of the holder", took)
    report_seconds(capsys, servers, "files written right after the SIGKILL registered after", landed)
    assert took <= LEASE + POLL + SLACK, f"takeover took {took:.2f} s\n{instances.logs()}"
    assert holder_of(servers, tree.root)[1] > token, "a takeover must raise the token"
    wait_until(lambda: not standing_by(standby), 5, "the new holder's STATUS to stop saying standing by",
               instances.logs)


def test_sigstop_the_holder_past_its_lease_it_writes_nothing_after_sigcont(tree, servers, instances, capsys):
    holder, standby, files = holder_and_standby(tree, servers, instances, 5)
    _, token = holder_of(servers, tree.root)

    stopped = time.monotonic()
    holder.signal(signal.SIGSTOP)
    try:
        # Events the stalled holder will read when it wakes, for files the new holder
        # registers meanwhile: written by both, they would be doubled.
        meanwhile = write_videos(tree.root, 5, "b") + write_videos(tree.root / "new", 5, "c")
        wait_holder(servers, instances, tree.root, [standby], timeout=LEASE + POLL + 10)
        took = time.monotonic() - stopped
        one_row_each(servers, instances, files + meanwhile, hold=0.5)
        time.sleep(max(0.0, LEASE - (time.monotonic() - stopped)) + POLL)   # well past its lease
    finally:
        holder.signal(signal.SIGCONT)
    report_seconds(capsys, servers, "takeover after SIGSTOP of the holder", took)
    assert took <= LEASE + POLL + SLACK, f"takeover took {took:.2f} s\n{instances.logs()}"

    # Awake again: it reads the queued events, finds its lease gone, commits nothing.
    wait_until(lambda: standing_by(holder), 10, "the woken holder to say it is standing by", instances.logs)
    later = write_videos(tree.root, 5, "d")
    one_row_each(servers, instances, files + meanwhile + later, hold=2.0)
    pid, new_token = holder_of(servers, tree.root)
    assert pid == standby.pid and new_token > token, (servers.leases(), instances.logs())
    assert holder.proc.poll() is None, f"the woken holder exited\n{instances.logs()}"
    exactly_one_writer(servers, instances, tree.root, [holder, standby])


def _statements(node) -> list[str]:
    """What the server is running for clients now (state, statement): why a takeover waits."""
    with node.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT ID, TIME, STATE, LEFT(INFO, 110) FROM information_schema.PROCESSLIST "
                    "WHERE COMMAND = 'Query' AND USER LIKE 'u\\_%%'")
        return [f"connection {cid}, {seconds} s {state!r}: {info}" for cid, seconds, state, info in cur.fetchall()]


def _waiting_fence(node) -> bool:
    """Whether a write's fence (the UPDATE of the lease row that ends every write) is under
    way on `node`: while the test holds the row, it waits there."""
    with node.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT INFO FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query'")
        return any("SET `writes`" in (query or "") for (query,) in cur.fetchall())


def test_a_holder_stopped_inside_a_write_commits_nothing(tree, servers, instances, capsys):
    """Fencing itself: the holder is stopped between the rows of a write and its commit, and
    wakes after a takeover. Its transaction must commit nothing: the rows it inserted would
    double the new holder's. (The test holds the lease row for a moment so that the write is
    caught with its rows inserted and its fence waiting; then lets go.)"""
    holder, standby, files = holder_and_standby(tree, servers, instances, 3)
    node = servers.node(instances.vias[instances.started.index(holder)])

    blocker = node.connect(servers.database["MYSQL_DB_NAME"])
    blocker.autocommit(False)
    try:
        with blocker.cursor() as cur:
            cur.execute("SELECT token FROM vfs_notifier_leases WHERE root = %s FOR UPDATE", (str(tree.root),))
        caught = write_videos(tree.root, 4, "caught")
        wait_until(lambda: _waiting_fence(node), 10, "the holder's write to wait at its fence", instances.logs)
        holder.signal(signal.SIGSTOP)
        stopped = time.monotonic()
    finally:
        with contextlib.suppress(pymysql.MySQLError):
            blocker.rollback()      # on Galera a takeover through another node may have aborted it
        blocker.close()
    try:
        try:
            wait_holder(servers, instances, tree.root, [standby], timeout=LEASE + POLL + 10)
        except AssertionError as error:
            waiting = "\n".join(_statements(servers.node(instances.vias[instances.started.index(standby)])))
            raise AssertionError(f"{error}\nstatements under way on the standby's server, the holder "
                                 f"still stopped:\n{waiting}") from None
        took = time.monotonic() - stopped
        one_row_each(servers, instances, files + caught, hold=0.5)
    finally:
        holder.signal(signal.SIGCONT)
    report_seconds(capsys, servers, "takeover from a holder stopped inside a write", took)
    assert took <= LEASE + POLL + SLACK, f"takeover took {took:.2f} s\n{instances.logs()}"
    wait_until(lambda: standing_by(holder), 10, "the woken holder to say it is standing by", instances.logs)
    one_row_each(servers, instances, files + caught, hold=2.0)
    assert holder_of(servers, tree.root)[0] == standby.pid, (servers.leases(), instances.logs())
