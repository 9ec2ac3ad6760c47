"""The database password: where it may come from, and keeping it out of every message.

Set directly (TOML or MYSQL_PASS), read from a file (database.password_file), or from the
systemd credential `mysql-password`; check-config shows where it came from, never what it is.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Optional

from .model import ConfigError
from .spec import section

CREDENTIAL_NAME = "mysql-password"
SECRET_KEYS = frozenset({"database.password"})
HIDDEN = "(hidden)"


def resolve_password(values: Mapping[str, Any], provenance: dict[str, tuple[str, str]],
                     env: Mapping[str, str], read_secret: Callable[[str], str]) -> str:
    """The password: set directly, else read from a file, else from a systemd credential.

    Records where a read one came from in `provenance`."""
    if values["database.password"]:
        return values["database.password"]
    if values["database.password_file"]:
        path = values["database.password_file"]
        source = provenance["database.password_file"][1]
        try:
            secret = read_secret(path)
        except OSError as err:
            if source.startswith("environment"):
                raise ConfigError("MYSQL_PASS_FILE", f"cannot read {path}: {err.strerror}", "environment") from None
            raise ConfigError("database.password_file", f"cannot read {path}: {err.strerror}", source) from None
        provenance["database.password"] = (HIDDEN, f"file {path}")
        return secret
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        path = os.path.join(cred_dir, CREDENTIAL_NAME)
        try:
            secret = read_secret(path)
        except FileNotFoundError:
            return ""
        except OSError as err:
            raise ConfigError("CREDENTIALS_DIRECTORY", f"cannot read {path}: {err.strerror}",
                              "environment") from None
        provenance["database.password"] = (HIDDEN, f"systemd credential {CREDENTIAL_NAME}")
        return secret
    return ""


def read_first_line(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.readline().rstrip("\r\n")


def exposed_password_warning(data: Mapping[str, Any], path: str, mode: int) -> Optional[str]:
    """A warning if the config file at `path` (permission bits `mode`) holds a password
    every user can read."""
    if section(data, "database", path).get("password") and mode & 0o004:
        return f"{path} holds a database password and every user can read it: chmod o-r {path}"
    return None
