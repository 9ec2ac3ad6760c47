"""The database server an instance uses crashes under it (issue 22). On Galera the instance
moves to the next node of database.nodes (or the standby takes over); on one server both wait
for it to come back. Either way every file gets exactly one row, and one instance writes."""

from __future__ import annotations

import threading
import time

from tests.ha.checks import exactly_one_writer, holder_and_standby, one_row_each, wait_holder, write_videos


def test_the_standby_reconnects_and_writes_nothing(tree, servers, instances):
    """The reconnect catch-up is a walk of every root: the standby's must write nothing. (On
    one server both instances lose it and reconnect; the holder's own reconnect on Galera is
    the next test's.)"""
    holder, standby, files = holder_and_standby(tree, servers, instances, 6)
    via = instances.vias[instances.started.index(standby)]
    servers.kill(via)
    files += write_videos(tree.root / "b", 6, "b", pause=0.1)
    time.sleep(1.0)                         # the standby notices and retries meanwhile
    servers.restart(via)
    files += write_videos(tree.root / "c", 6, "c")
    one_row_each(servers, instances, files, timeout=40, hold=2.0)
    exactly_one_writer(servers, instances, tree.root, [holder, standby], timeout=30)


def test_kill_the_holders_server_while_files_arrive(tree, servers, instances):
    first = instances.start(via=0)
    second = instances.start(via=1)
    files = write_videos(tree.root, 4, "a")
    one_row_each(servers, instances, files, hold=0.5)
    holder = wait_holder(servers, instances, tree.root, [first, second])
    via = instances.vias[instances.started.index(holder)]

    arriving: list = []
    writer = threading.Thread(target=lambda: arriving.extend(write_videos(tree.root / "burst", 40, "f",
                                                                          pause=0.08)))
    writer.start()
    time.sleep(1.0)
    servers.kill(via)                       # in the middle of the arrivals
    writer.join()
    if servers.kind == "galera":
        # Two nodes still form the cluster: failover alone must register every file.
        one_row_each(servers, instances, files + arriving, timeout=40, hold=1.0)
    servers.restart(via)                    # rejoins by IST (Galera), or the server is back
    one_row_each(servers, instances, files + arriving, timeout=40, hold=2.0)
    exactly_one_writer(servers, instances, tree.root, [first, second], timeout=30)
