"""The servers a store may use, in order (the socket or MYSQL_HOST, then database.nodes), and
a connection to one of them: refused, not yet a member of a Galera cluster's primary
component, or ready (then reads wait for the cluster: wsrep_sync_wait)."""

from __future__ import annotations

import math
from typing import Optional

import pymysql

from ..store import StoreUnavailable
from ..settings import Database
from .errors import code, reason

Server = tuple[str, int, str]    # host, port, socket path (a socket when set)

# A server that stops answering (a network partition sends no RST) blocks the service's
# loop for this long at most; it must stay well below half the unit's WatchdogSec=30s, or
# systemd kills the service in the middle of an outage it is meant to ride out.
IO_TIMEOUT = 6
CONNECT_TIMEOUT = 3
# Leases are one-line queries on their own connection; housekeeping asks them in the same
# loop pass as a batch may be written, so both together must stay below half WatchdogSec.
LEASE_IO_TIMEOUT = 2


def servers(database: Database) -> tuple[Server, ...]:
    """Each server to try: the socket or MYSQL_HOST, then the nodes."""
    first = [("", 0, database.socket)] if database.socket else []
    tcp = [(host, port, "") for host, port in database.servers]
    return tuple(first + tcp) or (("localhost", database.port, ""),)


def where(server: Server) -> str:
    host, port, sock = server
    if sock:
        return f"socket {sock}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect(database: Database, server: Server, autocommit: bool, timeout: int = IO_TIMEOUT,
            flags: int = 0) -> pymysql.connections.Connection:
    host, port, sock = server
    try:
        return pymysql.connect(
            host=host or "localhost", port=port, unix_socket=sock or None,
            user=database.user, password=database.password, database=database.name, charset="utf8mb4",
            autocommit=autocommit, connect_timeout=min(CONNECT_TIMEOUT, timeout),
            read_timeout=timeout, write_timeout=timeout, client_flag=flags)
    except pymysql.MySQLError as err:
        raise StoreUnavailable(reason(err)) from None
    except OSError as err:
        raise StoreUnavailable(str(err)) from None


def galera_ready(cursor) -> bool:
    """True on a Galera node (then reads wait for the cluster: wsrep_sync_wait), False on a
    plain server; StoreUnavailable on a node not ready to serve (out of the primary
    component, or still joining: its data may be stale), so that the next server is used."""
    try:
        cursor.execute("SHOW VARIABLES LIKE 'wsrep_on'")
        row = cursor.fetchone()
        if not row or str(row[1]).upper() != "ON":
            return False
        cursor.execute("SHOW STATUS LIKE 'wsrep_ready'")
        ready = cursor.fetchone()
    except pymysql.MySQLError as err:
        if code(err) >= 2000:
            raise     # the client lost the server: the caller's reconnect path
        return False
    if not ready or str(ready[1]).upper() != "ON":
        raise StoreUnavailable("Galera node not ready (wsrep_ready is OFF: not in the primary component)")
    cursor.execute("SET SESSION wsrep_sync_wait = 1")
    return True


def bound_idle_writes(cursor, lease_seconds: float) -> None:
    """A transaction of ours that has written and then waits (its process stopped by SIGSTOP
    or a stall between a write's fence and its commit) would hold the lease row's lock, and a
    takeover on this server would wait on it for as long as the process stays stopped: the
    server ends such a transaction (and its connection) after half a lease. Ours never idle
    between statements otherwise. MySQL has no such variable: there a stop inside that
    window of milliseconds delays the takeover until the server drops the connection."""
    try:
        cursor.execute("SET SESSION idle_write_transaction_timeout = %s", (max(2, math.ceil(lease_seconds / 2)),))
    except pymysql.MySQLError as err:
        if code(err) >= 2000:
            raise
        # 1193: unknown variable (MySQL, MariaDB before 10.3)


def quietly_rollback(conn: pymysql.connections.Connection) -> None:
    try:
        conn.rollback()
    except (pymysql.MySQLError, OSError):
        pass          # then the next statement finds the connection broken


def quietly_close(conn: Optional[pymysql.connections.Connection]) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:  # already broken: nothing left to close
            pass
