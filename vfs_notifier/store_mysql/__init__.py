"""The production store: the existing `videos` table of a MySQL/MariaDB server, via PyMySQL
(store.py), in parts: the tables (schema.py), the servers and connections (servers.py), the
leases and the fence (leases.py), the statements that write rows (statements.py), an
insert's (insert.py), the thread writes commit on (commit_thread.py), the queries that read
rows (reads.py) and the registered versions in bulk (bulk_read.py), and what an error means
(errors.py)."""

from .schema import CREATE_FILES, UPSERT_FILES_HEAD, UPSERT_FILES_TAIL, lease_key, like_below, old_lock_name
from .store import MySQLStore

__all__ = ["CREATE_FILES", "MySQLStore", "UPSERT_FILES_HEAD", "UPSERT_FILES_TAIL", "lease_key", "like_below",
           "old_lock_name"]
