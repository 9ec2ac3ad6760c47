"""Leases in MySQL/MariaDB: one row per root in `vfs_notifier_leases`, taken and renewed by
conditional UPDATEs timed by the server's clock (NOW(6)), never a host's; checked by every
write, last in its transaction, by an UPDATE of the row (the fence). registrar/lease.py says
why a row and not GET_LOCK, and what the fence guarantees.

On one server the fence's row lock makes a takeover wait for the write's commit; on a Galera
cluster the fence puts the row in the write's write set, so that of a write and a takeover
certified concurrently through two nodes, one commits and the other gets error 1213."""

from __future__ import annotations

import pymysql

from ..store import LEASES_TABLE, Fence, Lease, LeaseLost, StoreUnavailable, holder
from .errors import CONFLICT, code, reason
from .schema import lease_key, old_lock_name
from .servers import bound_idle_writes, quietly_rollback


def prepare_session(conn: pymysql.connections.Connection, lease_seconds: float, galera: bool) -> None:
    """The lease connection's session: its lock waits and idle writes bounded, its reads on
    a Galera node waiting for the cluster. A failure is StoreUnavailable."""
    try:
        with conn.cursor() as cursor:
            # A takeover must not wait on the holder's fence (a row lock held to its
            # commit): it fails within a second and is tried again at the next poll.
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
            bound_idle_writes(cursor, lease_seconds)
            if galera:
                cursor.execute("SET SESSION wsrep_sync_wait = 1")
    except (pymysql.MySQLError, OSError) as err:
        raise StoreUnavailable(reason(err)) from None


def take_or_renew(conn: pymysql.connections.Connection, database: str, instance: str, root: str,
                  token: int, seconds: float) -> Lease:
    """The lease connection's (autocommit off, FOUND_ROWS): renew `token` if it is still
    ours, else take the lease if it is free or lapsed, else name its holder. Errors but a
    conflict are the caller's (StoreUnavailable)."""
    key = lease_key(database, root)
    micros = int(seconds * 1_000_000)
    with conn.cursor() as cursor:
        if token:
            try:
                renewed = cursor.execute(
                    f"UPDATE `{LEASES_TABLE}` SET `expires` = NOW(6) + INTERVAL %s MICROSECOND "
                    "WHERE `lease_key` = %s AND `instance` = %s AND `token` = %s",
                    (micros, key, instance, token))
                conn.commit()
            except pymysql.MySQLError as err:
                if code(err) not in CONFLICT:
                    raise
                # A takeover under way, or our own fence's row lock: not an answer. The
                # fence of the next write says for sure; ask again next poll.
                quietly_rollback(conn)
                return Lease(token, "")
            if renewed:
                return Lease(token, "")
        # Version 1.1 claimed a root by GET_LOCK alone and knows nothing of leases: during a
        # rolling upgrade, a root it holds is left to it.
        cursor.execute("SELECT IS_USED_LOCK(%s)", (old_lock_name(database, root),))
        if cursor.fetchone()[0] is not None:
            conn.commit()
            return Lease(0, "a vfs-notifier 1.1 instance (by its GET_LOCK claim)")
        new_token = 0
        try:
            # A missing row is made lapsed, then taken like any lapsed one.
            cursor.execute(
                f"INSERT IGNORE INTO `{LEASES_TABLE}` (`lease_key`, `root`, `holder`, `instance`, "
                "`token`, `expires`, `taken`) VALUES (%s, %s, '', '', 0, "
                "NOW(6) - INTERVAL 1 SECOND, NOW(6))", (key, root))
            taken = cursor.execute(
                f"UPDATE `{LEASES_TABLE}` SET `token` = `token` + 1, `holder` = %s, `instance` = %s, "
                "`expires` = NOW(6) + INTERVAL %s MICROSECOND, `taken` = NOW(6) "
                "WHERE `lease_key` = %s AND `expires` <= NOW(6)",
                (holder(), instance, micros, key))
            if taken:
                cursor.execute(f"SELECT `token` FROM `{LEASES_TABLE}` WHERE `lease_key` = %s", (key,))
                new_token = int(cursor.fetchone()[0])
            conn.commit()    # Galera: certified here; of two takers, one commits
        except pymysql.MySQLError as err:
            if code(err) not in CONFLICT:
                raise
            quietly_rollback(conn)
            new_token = 0
        if new_token:
            return Lease(new_token, "")
        cursor.execute(f"SELECT `holder` FROM `{LEASES_TABLE}` WHERE `lease_key` = %s", (key,))
        found = cursor.fetchone()
        conn.commit()
        return Lease(0, (found[0] if found else "") or "another instance")


def release(conn: pymysql.connections.Connection, database: str, instance: str, root: str, token: int) -> None:
    """Lapse the lease now (a clean stop), if it is still ours; best effort: else it lapses."""
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"UPDATE `{LEASES_TABLE}` SET `expires` = NOW(6) - INTERVAL 1 SECOND "
                           "WHERE `lease_key` = %s AND `instance` = %s AND `token` = %s",
                           (lease_key(database, root), instance, token))
        conn.commit()
    except (pymysql.MySQLError, OSError):
        quietly_rollback(conn)


def check_fence(cursor, database: str, instance: str, fence: Fence) -> None:
    """Last statement of every write: each lease still ours and current, or LeaseLost. An
    UPDATE, not a SELECT: it locks the row to the commit, and Galera certifies the write
    against a takeover only if the row is in its write set (hence `writes` + 1, a change)."""
    lost = []
    for root, token in fence.items():
        if not token or not cursor.execute(
                f"UPDATE `{LEASES_TABLE}` SET `writes` = `writes` + 1 WHERE `lease_key` = %s "
                "AND `instance` = %s AND `token` = %s AND `expires` > NOW(6)",
                (lease_key(database, root), instance, token)):
            lost.append(root)
    if lost:
        raise LeaseLost(lost)
