"""A throwaway 3-node MariaDB Galera cluster on loopback, owned by the test session.

Debian's `mariadb-server` and `galera-4`, the recipe of docs (ENVIRONMENT): every node its own
datadir and four free loopback ports (SQL, group communication, IST, SST); node 1 bootstraps
the cluster, nodes 2 and 3 join it one at a time by an rsync state transfer. rsync's state
transfer refuses to run as root, so as root the nodes run as the `mysql` user, in a directory
of their own below /tmp (pytest's temp directories are 0700 root: `mysql` cannot enter them)
that is removed when the session ends. As another user they run as that user (checked: the
cluster forms and a killed node rejoins by IST as `nobody` too).

Tests kill a node with SIGKILL and start it again: it rejoins and catches up by IST.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Optional

import pymysql

from tests.support.mariadb import free_port

SIZE = 3
CLUSTER = "vfs-notifier-test"
# Small enough for a 2 GB tmpfs /tmp: the gcache ring buffer is a file of this size per node.
GCACHE = "32M"
USER = "mysql"
# A node killed with SIGKILL is evicted once the others have suspected it this long (Galera's
# default is 5 s); the survivors' commits, which wait for every member of the view, stall for
# about that long. Only this one timeout is shortened: shorter inactive and install timeouts
# (3 s) made a rejoin under load drop the whole cluster out of the primary component.
EVS = "evs.suspect_timeout=PT3S"


def provider() -> str:
    """The wsrep provider library that Debian's galera-4 installs."""
    try:
        listed = subprocess.run(["dpkg", "-L", "galera-4"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        listed = ""
    for line in listed.splitlines():
        if line.endswith("/libgalera_smm.so") and os.path.exists(line):
            return line
    raise RuntimeError("galera-4 is not installed (no libgalera_smm.so from `dpkg -L galera-4`): "
                       "scripts/test installs it as root; or: apt-get install galera-4 rsync")


def _tail(path: Path, lines: int = 25) -> str:
    """The end of a node's error log, its errors first: the cause is often a few screens up,
    above the shutdown's own lines."""
    try:
        said = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no error log at {path})"
    errors = [line for line in said[:-lines] if "[ERROR]" in line][-10:]
    return "\n".join(errors + (["..."] if errors else []) + said[-lines:])


class Node:
    host = "127.0.0.1"

    def __init__(self, cluster: "Galera", number: int) -> None:
        self.cluster = cluster
        self.number = number
        self.name = f"node{number}"
        self.dir = cluster.base / self.name
        self.datadir = self.dir / "data"
        self.log = self.dir / "error.log"
        self.port, self.gcomm, self.ist, self.sst = (free_port() for _ in range(4))
        self.proc: Optional[subprocess.Popen] = None

    def __repr__(self) -> str:
        return f"<{self.name} :{self.port}{' up' if self.running else ' down'}>"

    @property
    def address(self) -> str:
        """host:port, as database.nodes lists a server."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self, new_cluster: bool) -> list[str]:
        peers = ",".join(f"{self.host}:{n.gcomm}" for n in self.cluster.nodes)
        provider_options = (f"gmcast.listen_addr=tcp://{self.host}:{self.gcomm};"
                            f"ist.recv_addr={self.host}:{self.ist};gcache.size={self.cluster.gcache};{EVS}")
        cmd = [shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults",
               f"--datadir={self.datadir}", f"--socket={self.dir / 'sock'}", f"--port={self.port}",
               f"--bind-address={self.host}", f"--pid-file={self.dir / 'pid'}", f"--log-error={self.log}",
               f"--tmpdir={self.dir / 'tmp'}",
               "--skip-name-resolve", "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M",
               # Tests need correctness, not durability against power loss (a SIGKILL keeps the
               # page cache): as the single test server.
               "--innodb-flush-log-at-trx-commit=2", "--max-connections=300",
               "--wsrep-on=ON", f"--wsrep-provider={self.cluster.provider}",
               f"--wsrep-cluster-name={CLUSTER}", f"--wsrep-cluster-address=gcomm://{peers}",
               f"--wsrep-node-name={self.name}", f"--wsrep-node-address={self.host}:{self.gcomm}",
               f"--wsrep-node-incoming-address={self.host}:{self.port}",
               f"--wsrep-sst-receive-address={self.host}:{self.sst}",
               f"--wsrep-provider-options={provider_options}", "--wsrep-sst-method=rsync",
               "--binlog-format=ROW", "--default-storage-engine=InnoDB", "--innodb-autoinc-lock-mode=2"]
        cmd.extend(self.cluster.options)   # later options win: the caller's override the above
        if self.cluster.as_user:
            cmd.append(f"--user={self.cluster.as_user}")
        if new_cluster:
            cmd.append("--wsrep-new-cluster")
        return cmd

    def start(self, new_cluster: bool = False, timeout: float = 90) -> None:
        """Start the node and wait until it is a synced member that takes writes."""
        if self.running:
            return
        if not new_cluster and not any(n.running for n in self.cluster.nodes if n is not self):
            raise RuntimeError(f"{self.name}: no other node is up to join; the cluster must be "
                               "bootstrapped again (Galera.start)")
        # A node killed while joining leaves a half-received state transfer behind.
        for stale in ("sst_in_progress", "rsync_sst.pid", "rsync_sst.conf"):
            with_path = self.datadir / stale
            if with_path.exists():
                with_path.unlink()
        cmd = self.command(new_cluster)
        position = None if new_cluster else self.recovered_position(cmd)
        if position:
            cmd.append(f"--wsrep-start-position={position}")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self.wait_synced(timeout)

    def recovered_position(self, cmd: list[str]) -> Optional[str]:
        """After a crash, where this node's data stops (uuid:seqno), read as mysqld_safe's
        galera_recovery does, by `mariadbd --wsrep-recover`: given it, the node asks the
        cluster for the missing write sets only (IST) instead of a full copy (SST)."""
        grastate = self.datadir / "grastate.dat"
        try:
            state = grastate.read_text()
        except OSError:
            return None     # never started: it joins by SST
        seqno = re.search(r"^seqno:\s*(-?\d+)", state, re.M)
        if seqno and int(seqno.group(1)) >= 0:
            return None     # a clean stop wrote its position down
        log = self.dir / "recover.log"
        subprocess.run([*cmd, "--wsrep-recover", f"--log-error={log}"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)
        found = re.search(r"WSREP: Recovered position: (\S+:-?\d+)", log.read_text(errors="replace")
                          if log.exists() else "")
        return found.group(1) if found else None

    def wait_synced(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        state = "not answering"
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                self.proc = None
                raise RuntimeError(f"Galera {self.name} (port {self.port}) exited {code} while starting; "
                                   f"the last lines of {self.log}:\n{self._said()}")
            try:
                status = self.status("wsrep_ready", "wsrep_local_state_comment")
                state = f"{status}"
                if status.get("wsrep_ready") == "ON" and status.get("wsrep_local_state_comment") == "Synced":
                    return
            except pymysql.MySQLError as error:
                state = f"not answering ({error})"
            if time.monotonic() > deadline:
                raise RuntimeError(f"Galera {self.name} (port {self.port}) not synced in {timeout:.0f} s "
                                   f"({state}); the last lines of {self.log}:\n{self._said()}")
            time.sleep(0.2)

    def _said(self) -> str:
        """The node's error log, and which of its ports another socket holds: for a port in
        use the log says only "the rsync or stunnel daemon ... terminated unexpectedly" (SST)
        or a bind error further up."""
        said = _tail(self.log)
        held = []
        for what, port in (("SQL", self.port), ("group", self.gcomm), ("IST", self.ist),
                           ("SST", self.sst)):
            with socket.socket() as sock:
                # As the servers bind: a connection of theirs in TIME_WAIT is no obstacle.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((self.host, port))
                except OSError as err:
                    held.append(f"{what} port {port} ({err.strerror})")
        if held and not self.running:
            said += "\nheld by another socket now: " + ", ".join(held)
        return said

    def status(self, *names: str) -> dict[str, str]:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("SHOW STATUS WHERE Variable_name IN (" + ",".join(["%s"] * len(names)) + ")", names)
            return {name: value for name, value in cur.fetchall()}

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown (the node rejoins by IST when started again)."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """A clean shutdown: the node leaves the cluster."""
        self._end(signal.SIGTERM)

    def _end(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.proc = None

    def restart(self, timeout: float = 90) -> None:
        """Start a node that was killed or stopped again: it rejoins the running cluster."""
        self._end(signal.SIGTERM)
        self.start(timeout=timeout)

    def connect(self, database: Optional[str] = None, **kwargs) -> pymysql.connections.Connection:
        return pymysql.connect(host=self.host, port=self.port, user="root", password="", database=database,
                               charset="utf8mb4", autocommit=True, connect_timeout=3,
                               read_timeout=kwargs.pop("read_timeout", 30), **kwargs)


class Galera:
    """Three nodes; start() bootstraps them, close() stops them and removes every file."""

    def __init__(self, base: Optional[Path] = None, options: tuple[str, ...] = (),
                 gcache: str = GCACHE) -> None:
        """`base`: the directory to make the cluster's own below (default /tmp); `options`:
        more mariadbd options for every node (the benchmark asks for durable commits)."""
        self.provider = provider()
        self.options = options
        self.gcache = gcache
        self.as_user = USER if os.geteuid() == 0 else None
        # Below /tmp, not pytest's 0700 temp directory: the mysql user must enter it.
        self.base = Path(tempfile.mkdtemp(prefix="vfs-galera-", dir=base))
        self.base.chmod(0o755)
        self.nodes = [Node(self, n) for n in range(1, SIZE + 1)]
        atexit.register(self.close)   # a session that dies early still ends its servers

    def install(self) -> None:
        """One datadir made by mariadb-install-db, copied for every node (nodes 2 and 3 take
        node 1's state by SST anyway; the copy only saves two installs)."""
        first = self.nodes[0]
        for node in self.nodes:
            # Its own temporary directory: whatever cleans /tmp meanwhile must not take the
            # server's temporary tables (an install failed so, on a shared machine).
            (node.dir / "tmp").mkdir(parents=True)
            self._own(node.dir)
        cmd = ["mariadb-install-db", "--no-defaults", f"--datadir={first.datadir}",
               f"--tmpdir={first.dir / 'tmp'}", "--auth-root-authentication-method=normal", "--skip-test-db",
               "--innodb-log-file-size=16M"]
        if self.as_user:
            cmd.append(f"--user={self.as_user}")
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            said = (done.stdout + done.stderr).splitlines()
            errors = [line for line in said if "ERROR" in line or "Warning" in line]
            raise RuntimeError(f"mariadb-install-db failed ({done.returncode}):\n"
                               + "\n".join(errors[-15:] or said[-25:]))
        for node in self.nodes[1:]:
            shutil.copytree(first.datadir, node.datadir, symlinks=True)
            self._own(node.datadir)

    def _own(self, path: Path) -> None:
        if not self.as_user:
            return
        entry = pwd.getpwnam(self.as_user)
        for directory, dirs, files in os.walk(path):
            os.chown(directory, entry.pw_uid, entry.pw_gid)
            for name in files:
                os.chown(os.path.join(directory, name), entry.pw_uid, entry.pw_gid)

    def start(self) -> "Galera":
        """Node 1 bootstraps; 2 and 3 join one at a time; back when the cluster has three."""
        self.install()
        self.nodes[0].start(new_cluster=True)
        for node in self.nodes[1:]:
            node.start()
        self.wait_size(SIZE)
        return self

    def wait_size(self, size: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        while True:
            for node in self.running:
                try:
                    seen[node.name] = node.status("wsrep_cluster_size").get("wsrep_cluster_size", "?")
                except pymysql.MySQLError as error:
                    seen[node.name] = f"({error})"
            if seen and all(seen.get(n.name) == str(size) for n in self.running):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Galera cluster did not reach {size} nodes in {timeout:.0f} s: {seen}; "
                                   + "; ".join(f"{n.name}: {_tail(n.log, 5)}" for n in self.nodes))
            time.sleep(0.2)

    @property
    def running(self) -> list[Node]:
        return [n for n in self.nodes if n.running]

    def heal(self) -> None:
        """Every node up and synced again, whatever the last test did to them."""
        down = [n for n in self.nodes if not n.running]
        if len(down) == SIZE:
            raise RuntimeError("every Galera node is down: the cluster cannot be healed by a rejoin")
        for node in down:
            node.start()
        for node in self.nodes:
            node.wait_synced()
        self.wait_size(SIZE)

    def new_database(self, password: str = "s3cret-Pw!") -> dict[str, str]:
        """A fresh database and a user that owns it, made through one node and seen on every
        running node; the MYSQL_* environment without host and port (those name a node)."""
        name = "t_" + uuid.uuid4().hex[:12]
        user = "u_" + name[2:10]
        with self.running[0].connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
            cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT ALL ON `{name}`.* TO '{user}'@'%'")
        for node in self.running:
            deadline = time.monotonic() + 20
            while True:
                try:
                    pymysql.connect(host=node.host, port=node.port, user=user, password=password,
                                    database=name, connect_timeout=3).close()
                    break
                except pymysql.MySQLError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        return {"MYSQL_USER": user, "MYSQL_PASS": password, "MYSQL_DB_NAME": name}

    def drop_database(self, name: str) -> None:
        node = self.running[0] if self.running else None
        if node is None:
            return
        with node.connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"DROP USER IF EXISTS 'u_{name[2:10]}'@'%'")

    def close(self) -> None:
        """Stop every node (the last one standing last) and remove every file they wrote."""
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.base, ignore_errors=True)
