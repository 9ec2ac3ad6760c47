"""Finding the config file and reading it: the one part of settings that touches the disk
(besides a password file), turning what can go wrong there into a ConfigError."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Mapping, Optional

from .model import ConfigError, Settings
from .resolution import resolve
from .secrets import exposed_password_warning

DEFAULT_CONFIG = "/etc/vfs-notifier.toml"


def config_path(cli_path: Optional[str], env: Mapping[str, str]) -> tuple[str, bool]:
    """Which file to read, and whether it must exist (only the default may be missing)."""
    if cli_path:
        return cli_path, True
    if env.get("VFS_NOTIFIER_CONFIG"):
        return env["VFS_NOTIFIER_CONFIG"], True
    return DEFAULT_CONFIG, False


def load(cli_path: Optional[str], env: Mapping[str, str]) -> Settings:
    """Read the config file (if any) and resolve it with the environment."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]

    path, required = config_path(cli_path, env)
    data: dict[str, Any] = {}
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if required:
            raise ConfigError("--config" if cli_path else "VFS_NOTIFIER_CONFIG",
                              f"{path}: no such file", "command line" if cli_path else "environment") from None
        mode = 0
    except OSError as err:
        raise ConfigError(path, f"cannot read: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(path, f"not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "not valid TOML: not UTF-8 text") from None
    settings = resolve(data, path, env)
    warning = exposed_password_warning(data, path, mode)
    if warning:
        return replace(settings, warnings=settings.warnings + (warning,))
    return settings
