"""The two backends of the high-availability suite behind one face, and the service
instances started on them.

`Servers.env(via)` configures an instance to reach the database through server `via` (on Galera:
node `via`, the other nodes listed after it as database.nodes; on one server: that server);
`kill(via)`/`restart(via)` crash and bring back the server an instance uses; `table` reads the
`videos` table through a server that is up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from tests.conftest import Tree
from tests.support.daemon import Daemon
from tests.support.galera import Node
from tests.support.mariadb import MariaDB
from tests.support.table import Table

POLL = 0.5
# The settings take a lease of two polls at least; four keep a holder on a loaded 2-core
# machine from losing it between renewals, and a takeover still comes within 2.5 s.
LEASE = 2.0
# What a loaded 2-core machine adds to "lease + one poll" (a poll that runs late, a slow
# commit); a takeover later than this is a bug, not load.
SLACK = 1.5
LEASES_TABLE = "vfs_notifier_leases"


class ServerTable(Table):
    """The `videos` table read through whichever server of the backend is up at each read."""

    def __init__(self, servers: "Servers") -> None:
        self.servers = servers

    @property
    def env(self) -> dict[str, str]:   # type: ignore[override]
        return self.servers.reader_env()


@dataclass
class Servers:
    kind: str                                   # "mariadb" or "galera"
    nodes: list[Union[MariaDB, Node]]
    database: dict[str, str]                    # MYSQL_USER, MYSQL_PASS, MYSQL_DB_NAME
    table: Table = field(init=False)

    def __post_init__(self) -> None:
        self.table = ServerTable(self)

    def __repr__(self) -> str:
        return self.kind

    def node(self, via: int) -> Union[MariaDB, Node]:
        return self.nodes[via % len(self.nodes)]

    def env(self, via: int = 0) -> dict[str, str]:
        """The MYSQL_* environment of an instance that reaches the database through server
        `via`, and on Galera the other nodes after it, the ones to fail over to."""
        first = self.node(via)
        env = {**self.database, "MYSQL_HOST": first.host, "MYSQL_PORT": str(first.port)}
        others = [self.node(via + step) for step in range(1, len(self.nodes))]
        if others:
            env["VFS_NOTIFIER_DATABASE_NODES"] = ",".join(f"{n.host}:{n.port}" for n in others)
        return env

    def reader_env(self) -> dict[str, str]:
        up = [n for n in self.nodes if n.running]
        if not up:
            raise AssertionError(f"no {self.kind} server is up to read the table through")
        return {**self.database, "MYSQL_HOST": up[-1].host, "MYSQL_PORT": str(up[-1].port)}

    def kill(self, via: int) -> None:
        """SIGKILL the server that instance `via` uses (on one server: the only one)."""
        self.node(via).kill()

    def restart(self, via: int) -> None:
        node = self.node(via)
        if isinstance(node, Node):
            node.restart()
        else:
            node.stop()
            node.start()

    def start(self, via: int) -> None:
        node = self.node(via)
        if not node.running:
            node.start()

    def leases(self) -> list[tuple[str, str, int, bool]]:
        """(root, holder, token, live) of every lease row; [] before the table exists."""
        if not self.table.execute(f"SHOW TABLES LIKE '{LEASES_TABLE}'"):
            return []
        return [(root, holder, int(token), bool(live)) for root, holder, token, live in self.table.execute(
            f"SELECT root, holder, token, expires > NOW(6) FROM {LEASES_TABLE} ORDER BY root")]


def holder_pid(holder: str) -> Optional[int]:
    """The pid a lease's holder names ("host pid 1234")."""
    found = re.search(r"\bpid (\d+)\b", holder) or re.search(r"(\d+)\D*$", holder)
    return int(found.group(1)) if found else None


@dataclass
class Instances:
    """Real service processes on one database; each with its own log directory and notify
    socket, all stopped when the test ends."""
    tree: Tree
    servers: Servers
    started: list[Daemon] = field(default_factory=list)
    vias: list[int] = field(default_factory=list)

    def make(self, via: int = 0, root: Optional[Path] = None, **extra: str) -> Daemon:
        number = len(self.started)
        work = self.tree.work / f"instance{number}"
        work.mkdir(exist_ok=True)
        env = {**self.tree.env, **self.servers.env(via), "LOG_BASE_DIRECTORY": str(work / "log"),
               "FOLDER_POLL_INTERVAL": str(POLL), "VFS_NOTIFIER_LEASE_SECONDS": str(LEASE)}
        if root is not None:
            env["CLIENT_VIDEO_DIR"] = str(root)
        env.update(extra)
        daemon = Daemon(work, env)
        self.started.append(daemon)
        self.vias.append(via)
        return daemon

    def start(self, via: int = 0, root: Optional[Path] = None, wait_ready: bool = True, **extra: str) -> Daemon:
        return self.make(via, root, **extra).start(wait_ready=wait_ready)

    def logs(self) -> str:
        """Every instance's own output, for an assertion's message."""
        return "\n".join(f"--- instance {i} (pid {d.proc.pid if d.proc else '?'}, through server {via}):\n"
                         + "\n".join(d.log().splitlines()[-40:])
                         for i, (d, via) in enumerate(zip(self.started, self.vias)))


def last_status(daemon: Daemon) -> str:
    assert daemon.notify is not None
    statuses = [m for m in daemon.notify.messages if "STATUS=" in m]
    return statuses[-1] if statuses else ""


def standing_by(daemon: Daemon) -> bool:
    return "standing by" in last_status(daemon)
