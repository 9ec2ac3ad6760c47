"""The tables in MySQL/MariaDB: `videos` exactly as existing deployments have it (never
altered on their side), the companion table of registered versions, the leases; and how a
root and a path are named in them.

`des_video_path` is utf8mb4_general_ci, so the server thinks `A.mp4`, `a.mp4` and `a.mp4 `
are one path; files on disk disagree. Every statement that selects rows by path pairs the
plain comparison (which uses the index) with a BINARY one (which is exact).
"""

from __future__ import annotations

import pymysql

from ..settings import Database
from ..store import FILES_TABLE, LEASES_TABLE, StoreUnavailable, root_digest
from .errors import DENIED, code, reason

# Exactly the table existing deployments have; never altered on their side.
CREATE_TABLE = """\
CREATE TABLE IF NOT EXISTS `videos` (
  `id` int(11) NOT NULL AUTO_INCREMENT, `main_dir` varchar(512) DEFAULT NULL,
  `des_video_path` varchar(1024) NOT NULL, `status` int(11) DEFAULT 1,
  `created_date` datetime DEFAULT current_timestamp(), `des_url` varchar(1024) DEFAULT NULL,
  PRIMARY KEY (`id`), KEY `idx_des_video_path` (`des_video_path`(255)), KEY `idx_status` (`status`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"""

# Ours: binary collation, since a path is bytes to the file system. No foreign key:
# consumers delete videos rows and must not be refused for it.
CREATE_FILES = f"""\
CREATE TABLE IF NOT EXISTS `{FILES_TABLE}` (
  `video_id` int(11) NOT NULL, `path` varchar(1024) NOT NULL,
  `dev` bigint unsigned NOT NULL, `ino` bigint unsigned NOT NULL,
  `size` bigint NOT NULL, `mtime_ns` bigint NOT NULL,
  PRIMARY KEY (`video_id`), KEY `idx_path` (`path`(255))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""

# One row per watched root and table. `token` grows with every takeover; `expires` is the
# server's clock (NOW(6)), never a host's; `writes` counts fenced writes (the fence's UPDATE
# must change the row, or Galera would not certify it against a takeover).
CREATE_LEASES = f"""\
CREATE TABLE IF NOT EXISTS `{LEASES_TABLE}` (
  `lease_key` char(40) NOT NULL, `root` varchar(1024) NOT NULL,
  `holder` varchar(255) NOT NULL, `instance` char(32) NOT NULL,
  `token` bigint unsigned NOT NULL, `expires` datetime(6) NOT NULL,
  `taken` datetime(6) NOT NULL, `writes` bigint unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (`lease_key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""

UPSERT_FILES_HEAD = f"INSERT INTO `{FILES_TABLE}` (`video_id`, `path`, `dev`, `ino`, `size`, `mtime_ns`) VALUES "
UPSERT_FILES_TAIL = (" ON DUPLICATE KEY UPDATE `path` = VALUES(`path`), `dev` = VALUES(`dev`), "
                     "`ino` = VALUES(`ino`), `size` = VALUES(`size`), `mtime_ns` = VALUES(`mtime_ns`)")
FILE_COLUMNS = "`video_id`, `path`, `dev`, `ino`, `size`, `mtime_ns`"


def old_lock_name(database: str, root: str) -> str:
    """The named lock by which version 1.1 claimed a root (MySQLStore.lease leaves it such a root)."""
    return "vfs-notifier:" + root_digest(f"{database}.videos\0{root}")


def lease_key(database: str, root: str) -> str:
    """The lease row of one root in one database's table."""
    return root_digest(f"{database}.videos\0{root}")


def like_below(directory: str) -> str:
    return directory.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "/%"


def create_missing(cursor: pymysql.cursors.Cursor, database: Database) -> None:
    """Create each of the three tables the server lacks; one the user may not create is
    StoreUnavailable, naming who may."""
    for table, ddl in (("videos", CREATE_TABLE), (FILES_TABLE, CREATE_FILES), (LEASES_TABLE, CREATE_LEASES)):
        cursor.execute("SHOW TABLES LIKE %s", (table,))
        if cursor.fetchone():
            continue
        try:
            cursor.execute(ddl)
        except pymysql.MySQLError as err:
            if code(err) in DENIED:
                raise StoreUnavailable(
                    f"table `{table}` is missing in {database.name} and {database.user} may "
                    f"not create it: run `vfs-notifier init-db` as a user who may "
                    f"({reason(err)})") from None
            raise
