"""One writer per root (issue 22): several instances of the real service on one directory and
one database, on one MariaDB server and on a 3-node Galera cluster reached through different
nodes. Exactly one holds the root's lease and writes; the others stand by and write nothing,
whichever path would write (events, the start walk, rescans every second)."""

from __future__ import annotations

import time

import pytest

from tests.ha.backends import POLL, SLACK
from tests.ha.checks import (exactly_one_writer, holder_of, one_row_each, report_seconds, wait_holder,
                             write_videos)


@pytest.mark.parametrize("rescan", ["0", "1"], ids=["events", "rescans-every-second"])
def test_two_instances_on_one_root_one_row_per_file(tree, servers, instances, rescan):
    before = write_videos(tree.root, 6, "before")       # found by both start walks
    first = instances.start(via=0, VFS_NOTIFIER_RESCAN_INTERVAL=rescan)
    second = instances.start(via=1, VFS_NOTIFIER_RESCAN_INTERVAL=rescan)
    after = write_videos(tree.root / "sub", 14, "after")
    # Three rescans of each instance at least, when they are on.
    one_row_each(servers, instances, before + after, hold=3.0)
    exactly_one_writer(servers, instances, tree.root, [first, second])


def test_three_instances_started_at_the_same_moment(tree, servers, instances, capsys):
    """Exactly one writes; when it stops cleanly (SIGTERM releases the lease), exactly one of
    the other two takes over within a poll. (A longer lease here, so that waiting it out could
    not pass for a release.)"""
    lease = 5.0
    files = write_videos(tree.root, 10, "early")
    daemons = [instances.make(via=n, VFS_NOTIFIER_LEASE_SECONDS=f"{lease:g}") for n in range(3)]
    for daemon in daemons:
        daemon.start(wait_ready=False)
    for daemon in daemons:
        daemon.wait_ready()
    files += write_videos(tree.root, 10, "late")
    one_row_each(servers, instances, files, hold=1.0)
    holder = exactly_one_writer(servers, instances, tree.root, daemons)

    stopped = time.monotonic()
    assert holder.stop() == 0, instances.logs()
    rest = [d for d in daemons if d is not holder]
    wait_holder(servers, instances, tree.root, rest, timeout=lease + POLL + 10)
    took = time.monotonic() - stopped
    report_seconds(capsys, servers, "takeover after a clean stop (SIGTERM) of the holder", took, lease)
    assert took <= POLL + SLACK, f"takeover took {took:.2f} s: the lease was not released\n{instances.logs()}"
    files += write_videos(tree.root, 5, "after")
    one_row_each(servers, instances, files, hold=1.0)
    exactly_one_writer(servers, instances, tree.root, rest)


def test_two_roots_through_two_servers_share_one_table(tree, servers, instances):
    """The case that was right already: each instance its own root, one table. Both write;
    neither stands by."""
    other = tree.base / "other"
    other.mkdir()
    first = instances.start(via=0, root=tree.root)
    second = instances.start(via=1, root=other)
    files = write_videos(tree.root, 10, "a") + write_videos(other, 10, "b")
    one_row_each(servers, instances, files)
    assert holder_of(servers, tree.root)[0] == first.pid
    assert holder_of(servers, other)[0] == second.pid
    assert len(servers.leases()) == 2, servers.leases()
    exactly_one_writer(servers, instances, tree.root, [first])
    exactly_one_writer(servers, instances, other, [second])
