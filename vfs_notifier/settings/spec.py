"""The settings there are: each one's TOML name, environment variables, parser and default,
and the refusal of a file that names any other.

Every setting has one name across TOML, code and docs (``database.port``) and, where the
earlier service had one, its environment variable (``MYSQL_PORT``), which wins over the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from . import parsers
from .model import ConfigError


@dataclass(frozen=True)
class Spec:
    key: str                  # TOML name: "section.name"
    env: tuple[str, ...]      # environment variables, first found wins
    parse: Callable[[Any], Any]
    default: Any = None       # None: required (unless `optional`)
    optional: bool = False    # an unset or empty optional value is ""
    unset_means: str = ""     # what an unset optional setting does, for check-config


# Renewed every poll, a lease must outlast two: an earlier service's FOLDER_POLL_INTERVAL=30
# must still start, so the default grows with the poll interval.
LEASE_SECONDS = 15.0
LEASE_POLLS = 3
LEASE_DEFAULT_NOTE = f"{LEASE_SECONDS:g} s, or {LEASE_POLLS} service.poll_interval when that is longer"

SPECS = (
    Spec("database.host", ("MYSQL_HOST",), parsers.text, optional=True,
         unset_means="no server: the embedded SQLite store"),
    Spec("database.port", ("MYSQL_PORT",), parsers.port, 3306),
    Spec("database.socket", ("MYSQL_SOCKET",), parsers.path, optional=True,
         unset_means="TCP to database.host:database.port"),
    Spec("database.user", ("MYSQL_USER",), parsers.text, optional=True,
         unset_means="none; required with a MySQL server"),
    Spec("database.name", ("MYSQL_DB_NAME",), parsers.text, optional=True,
         unset_means="none; required with a MySQL server"),
    Spec("database.password", ("MYSQL_PASS",), parsers.text, optional=True,
         unset_means="no password, unless database.password_file or the systemd credential "
                     "mysql-password gives one"),
    Spec("database.password_file", ("MYSQL_PASS_FILE",), parsers.path, optional=True, unset_means="none"),
    Spec("database.sqlite_path", ("VFS_NOTIFIER_SQLITE_PATH",), parsers.path, optional=True),
    Spec("database.nodes", ("VFS_NOTIFIER_DATABASE_NODES",), parsers.nodes, optional=True,
         unset_means="database.host only"),
    Spec("database.lease_seconds", ("VFS_NOTIFIER_LEASE_SECONDS",), parsers.positive_seconds, optional=True,
         unset_means=LEASE_DEFAULT_NOTE),
    Spec("urls.base_url", ("NGINX_BASE_URL",), parsers.url),
    Spec("urls.base_path", ("BASE_PATH",), parsers.path),
    Spec("urls.nginx_root", ("NGINX_INTERNAL_PATH", "NGINX_SERVE_DIRECTORY"), parsers.path, optional=True,
         unset_means="nginx sees the files at urls.base_path"),
    Spec("service.poll_interval", ("FOLDER_POLL_INTERVAL",), parsers.positive_seconds, 5.0),
    Spec("service.rescan_interval", ("VFS_NOTIFIER_RESCAN_INTERVAL",), parsers.seconds, 0.0),
    Spec("service.forget_removed", ("VFS_NOTIFIER_FORGET_REMOVED",), parsers.boolean, True),
    Spec("service.extensions", ("VFS_NOTIFIER_EXTENSIONS",), parsers.extensions, ("mp4", "avi", "mov", "mkv")),
    Spec("registration.check_structure", ("VFS_NOTIFIER_CHECK_STRUCTURE",), parsers.boolean, True),
    Spec("registration.ignore", ("VFS_NOTIFIER_IGNORE",), parsers.globs, ()),
    Spec("registration.settle_seconds", ("VFS_NOTIFIER_SETTLE_SECONDS",), parsers.seconds, 2.0),
    Spec("logging.directory", ("LOG_BASE_DIRECTORY",), parsers.path, optional=True),  # default: resolution
    Spec("logging.level", ("VFS_NOTIFIER_LOG_LEVEL",), parsers.level, "info"),
    Spec("registration.mode", ("VFS_NOTIFIER_REGISTRATION_MODE",), parsers.mode, "in-place"),
    # The earlier service's "internal directory for video processing": where copy mode copies to.
    Spec("registration.copy_to", ("INTERNAL_VIDEO_FOLDER_PATH",), parsers.path, optional=True,
         unset_means="none; required when registration.mode is copy"),
)

# Keys of one [[roots]] table, and the environment variables of the earlier
# service's two directories: CLIENT_VIDEO_DIR is the first root, STORAGE_PC_* the second.
ROOT_KEYS = {"path": parsers.path, "base_url": parsers.url, "base_path": parsers.path}
ROOT_ENV = {
    0: {"path": "CLIENT_VIDEO_DIR"},
    1: {"path": "STORAGE_PC_VIDEO_DIR", "base_url": "STORAGE_PC_BASE_URL"},
}
RETIRED_INTERNAL_PATH = (
    "no longer a setting: `path` is watched where it is (in a container, mount the directory "
    "at the same path inside as outside); INTERNAL_VIDEO_FOLDER_PATH is registration.copy_to")


def section(data: Mapping[str, Any], name: str, file_label: str) -> Mapping[str, Any]:
    """The [name] table of the file, {} if it has none."""
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(name, "must be a [table]", file_label)
    return value


def check_unknown_keys(data: Mapping[str, Any], file_label: str) -> None:
    """Refuse a section or key no Spec names: a typo must not pass as a default."""
    known: dict[str, set[str]] = {}
    for spec in SPECS:
        section_name, name = spec.key.split(".")
        known.setdefault(section_name, set()).add(name)
    for section_name, body in data.items():
        if section_name == "roots":
            if not isinstance(body, list) or not all(isinstance(t, dict) for t in body):
                raise ConfigError("roots", "must be a list of [[roots]] tables", file_label)
            for index, table in enumerate(body):
                for name in table:
                    if name == "internal_path":
                        raise ConfigError(f"roots[{index}].internal_path", RETIRED_INTERNAL_PATH, file_label)
                    if name not in ROOT_KEYS:
                        raise ConfigError(f"roots[{index}].{toml_key(name)}", "unknown setting", file_label)
            continue
        if section_name not in known:
            raise ConfigError(toml_key(section_name), "unknown section", file_label)
        for name in section(data, section_name, file_label):
            if name not in known[section_name]:
                raise ConfigError(f"{section_name}.{toml_key(name)}", "unknown setting", file_label)


def toml_key(name: str) -> str:
    """An unknown key as TOML would write it: quoted when empty or not a bare key, so that
    the one-line error always names something and stays one line."""
    if name and all(c.isascii() and (c.isalnum() or c in "-_") for c in name):
        return name
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else json.dumps(c)[1:-1]
                         for c in name) + '"'
