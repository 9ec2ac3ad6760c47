"""A throwaway MariaDB server owned by the test session: real mariadbd, its own datadir and port."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Optional

import pymysql

from tests.support.servers import ServerFailed, last_lines, tail_of

__all__ = ["MariaDB", "ServerFailed", "free_port", "last_lines"]


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port that is free now and stays free for a server to bind later, again
    after each restart: one outside the kernel's ephemeral range. A port from bind(0) lies in
    that range, and while its server is down (a Galera node's SST port until the node rejoins,
    a MariaDB stopped to simulate an outage) any outgoing connection on the machine may get it
    as its local port and hold it; the server then cannot bind it (seen: a rejoining node's
    rsync daemon died at once, again and again, beside another test run). Never the same port
    twice in one session."""
    low, high = _ephemeral_range()
    spans = [(lo, hi) for lo, hi in ((10000, low - 1), (high + 1, 65535)) if hi - lo > 1000]
    for _ in range(200 if spans else 0):
        lo, hi = random.choice(spans)
        port = random.randint(lo, hi)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as sock:   # no room outside the range: the kernel's pick
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(n) for n in EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999   # Linux's default
    return low, high


class MariaDB:
    host = "127.0.0.1"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.datadir = base / "data"
        self.socket = str(base / "mysqld.sock")
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.log = base / "mariadbd.log"
        self.output = base / "mariadbd.out"
        self.failure: Optional[ServerFailed] = None

    def install(self) -> None:
        for tool in ("mariadb-install-db", "mariadbd"):
            if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
                raise RuntimeError(f"{tool} not found: install mariadb-server (scripts/test does, as root)")
        self.base.mkdir(parents=True, exist_ok=True)
        cmd = ["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
               "--auth-root-authentication-method=normal", "--skip-test-db"]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        try:
            done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  errors="replace", timeout=120)
        except subprocess.TimeoutExpired as err:
            said = "".join(part.decode(errors="replace") if isinstance(part, bytes) else part
                           for part in (err.stdout, err.stderr) if part)
            raise ServerFailed("mariadb-install-db did not finish in 120 s", tail_of(said)) from None
        log = self.base / "install.log"
        log.write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            # The errors are on stderr (e.g. "Disk got full writing 'information_schema.(temporary)'":
            # mariadbd writes temporary tables to /tmp wherever its datadir is); stdout is advice.
            raise ServerFailed(f"mariadb-install-db exited {done.returncode} (datadir {self.datadir}, "
                               f"all it said: {log})", tail_of(done.stderr or done.stdout))

    def start(self, timeout: float = 60) -> None:
        """Start mariadbd and wait until it answers. A start that fails raises ServerFailed with
        the server's last lines; every later start of this server then fails at once with the
        same message, rather than each test waiting out the timeout again."""
        if self.failure is not None:
            raise ServerFailed(f"{self.failure.what} (an earlier start of this server; not tried again)",
                               self.failure.said)
        try:
            self._start(timeout)
        except ServerFailed as failure:
            self.failure = failure
            raise

    def _start(self, timeout: float) -> None:
        binary = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        cmd = [binary, "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
               f"--port={self.port}", "--bind-address=127.0.0.1", "--skip-log-bin",
               f"--pid-file={self.base / 'mariadbd.pid'}", f"--log-error={self.log}",
               "--skip-name-resolve", "--innodb-buffer-pool-size=128M",
               # Tests need correctness, not durability against power loss.
               "--innodb-flush-log-at-trx-commit=2", "--max-connections=500"]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        logged_before = self.log.stat().st_size if self.log.exists() else 0
        # What it says before its error log is open (a bad option, a missing directory).
        with open(self.output, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                # read_timeout: a port that accepts but never greets must not hang the wait.
                self.connect(read_timeout=5).close()
                return
            except pymysql.MySQLError:
                exited = self.proc.poll()
                if exited is not None:
                    raise ServerFailed(f"mariadbd exited {exited} at start (port {self.port})",
                                       self._said(logged_before))
                if self._disk_full_since(logged_before):
                    # mariadbd waits for someone to free space rather than exiting.
                    self._end(signal.SIGKILL)
                    raise ServerFailed(f"mariadbd cannot start: no space left ({self.datadir}, /tmp)",
                                       self._said(logged_before))
                if time.monotonic() > deadline:
                    self._end(signal.SIGKILL)
                    raise ServerFailed(f"mariadbd did not answer on port {self.port} within {timeout:g} s",
                                       self._said(logged_before))
                time.sleep(0.1)

    def _said(self, offset: int) -> str:
        """The error log's lines from this start (the file is appended to by every start),
        and anything mariadbd wrote to its stdout/stderr."""
        parts = [tail_of(self._logged_since(offset).decode(errors="replace"))]
        if self.output.exists() and self.output.stat().st_size:
            parts.append(f"{self.output}:\n{last_lines(self.output, 10)}")
        return "\n".join(parts)

    def _logged_since(self, offset: int) -> bytes:
        try:
            with open(self.log, "rb") as handle:
                handle.seek(offset)
                return handle.read()
        except OSError:
            return b""

    def _disk_full_since(self, offset: int) -> bool:
        written = self._logged_since(offset)
        return b"Errcode: 28" in written or b"No space left on device" in written

    def stop(self) -> None:
        """A clean shutdown (an outage, as an operator's restart makes one)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown."""
        self._end(signal.SIGKILL)

    def _end(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def connect(self, database: Optional[str] = None, **kwargs) -> pymysql.connections.Connection:
        return pymysql.connect(host=self.host, port=self.port, user="root", password="",
                               database=database, charset="utf8mb4", autocommit=True,
                               connect_timeout=5, **kwargs)

    def new_database(self, password: str = "s3cret-Pw!") -> dict[str, str]:
        """A fresh database and a user that owns it; the MYSQL_* environment for the service."""
        name = "t_" + uuid.uuid4().hex[:12]
        user = "u_" + name[2:10]
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
            cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT ALL ON `{name}`.* TO '{user}'@'%'")
        return {"MYSQL_HOST": self.host, "MYSQL_PORT": str(self.port), "MYSQL_USER": user,
                "MYSQL_PASS": password, "MYSQL_DB_NAME": name}

    def drop_database(self, env: dict[str, str]) -> None:
        """Drop what new_database() made, if the server is up. A connection a test left in a
        transaction must not hold the drop (and the suite) for MariaDB's default of a year:
        the drop gives up after a few seconds and leaves the database."""
        if not self.running:
            return
        try:
            with self.connect() as conn, conn.cursor() as cur:
                cur.execute("SET SESSION lock_wait_timeout = 5")
                cur.execute(f"DROP DATABASE IF EXISTS `{env['MYSQL_DB_NAME']}`")
                cur.execute(f"DROP USER IF EXISTS '{env['MYSQL_USER']}'@'%'")
        except pymysql.MySQLError:
            pass
