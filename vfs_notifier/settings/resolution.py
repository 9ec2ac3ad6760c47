"""Resolution: one pure merge of the TOML file, the environment and the defaults, and the
checks no single setting can make alone (roots against each other, copy_to against them).

Each resolved value remembers where it came from, so that an error names the setting and
its source and ``check-config`` can show both.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Optional

from .model import ConfigError, Database, Root, Settings
from .parsers import split_node
from .secrets import HIDDEN, SECRET_KEYS, read_first_line, resolve_password
from .spec import (LEASE_DEFAULT_NOTE, LEASE_POLLS, LEASE_SECONDS, ROOT_ENV, ROOT_KEYS, SPECS, check_unknown_keys,
                   section)

UNSET = "(unset)"   # how check-config shows an optional setting nobody set
MAIN_DIR_CHARS = 512   # `main_dir` varchar(512): a watched root's path must fit
_FROM_ENV = "environment ("   # how a source label naming a variable starts


class Resolver:
    """Looks a setting up in the environment, then the file, then its default."""

    def __init__(self, data: Mapping[str, Any], file_label: str, env: Mapping[str, str]) -> None:
        self.data, self.file_label, self.env = data, file_label, env
        self.provenance: dict[str, tuple[str, str]] = {}

    def get(self, key: str, env_vars: tuple[str, ...], parse: Callable[[Any], Any],
            file_value: Any, *, default: Any = None, optional: bool = False, note: str = "") -> Any:
        """`note` says where a default comes from, or what an unset optional setting means."""
        for var in env_vars:
            raw = self.env.get(var)
            if raw is None or (raw == "" and optional):
                continue
            return self._parse(var, raw, parse, "environment", key)
        if file_value is not None and not (file_value == "" and optional):
            return self._parse(key, file_value, parse, self.file_label, key)
        source = f"default: {note}" if note else "default"
        if default is not None:
            self.provenance[key] = (show(default), source)
            return default
        if optional:
            self.provenance[key] = (UNSET, source)
            return ""
        names = " or ".join(env_vars)
        raise ConfigError(f"{key} ({names})" if names else key,
                          f"required, set neither in {self.file_label} nor in the environment")

    def _parse(self, name: str, raw: Any, parse: Callable[[Any], Any], source: str, key: str) -> Any:
        try:
            value = parse(raw)
        except ValueError as problem:
            if key in SECRET_KEYS:
                raise ConfigError(name, "not usable (value not shown)", source) from None
            raise ConfigError(name, str(problem), source) from None
        label = f"{_FROM_ENV}{name})" if source == "environment" else source
        self.provenance[key] = (HIDDEN if key in SECRET_KEYS else show(value), label)
        return value

    def setting_and_source(self, key: str) -> tuple[str, str]:
        """A resolved setting's name as the user set it (the variable, or the TOML key) and
        its source, for an error or a warning about it."""
        label = self.provenance.get(key, ("", self.file_label))[1]
        if label.startswith(_FROM_ENV):
            return label[len(_FROM_ENV):-1], "environment"
        return key, label


def show(value: Any) -> str:
    """A value as check-config and the errors print it."""
    if isinstance(value, tuple):
        return ", ".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def resolve(data: Mapping[str, Any], file_label: str, env: Mapping[str, str],
            read_secret: Optional[Callable[[str], str]] = None) -> Settings:
    """Merge the parsed TOML `data`, the environment and the defaults into Settings.

    Pure except for `read_secret`, which reads a password file (tests pass a fake).
    Raises ConfigError naming the first setting that cannot be used.
    """
    check_unknown_keys(data, file_label)
    res = Resolver(data, file_label, env)
    values: dict[str, Any] = {}
    for spec in SPECS:
        section_name, name = spec.key.split(".")
        file_value = section(data, section_name, file_label).get(name)
        values[spec.key] = res.get(spec.key, spec.env, spec.parse, file_value,
                                   default=spec.default, optional=spec.optional, note=spec.unset_means)

    db_host, db_socket = values["database.host"], values["database.socket"]
    nodes = tuple(split_node(n, values["database.port"]) for n in values["database.nodes"])
    if db_host or db_socket or nodes:
        for key, var in (("database.user", "MYSQL_USER"), ("database.name", "MYSQL_DB_NAME")):
            if not values[key]:
                raise ConfigError(f"{key} ({var})", "required when a MySQL server is configured "
                                  "(database.host / MYSQL_HOST, database.nodes)")
    poll = values["service.poll_interval"]
    if values["database.lease_seconds"] == "":
        values["database.lease_seconds"] = max(LEASE_SECONDS, LEASE_POLLS * poll)
        res.provenance["database.lease_seconds"] = (show(values["database.lease_seconds"]),
                                                    f"default: {LEASE_DEFAULT_NOTE}")
    elif values["database.lease_seconds"] < 2 * poll:
        setting, source = res.setting_and_source("database.lease_seconds")
        raise ConfigError(setting, f"{show(values['database.lease_seconds'])} s is less than two "
                          f"service.poll_interval ({show(values['service.poll_interval'])} s): the "
                          f"lease, renewed every poll, would lapse between renewals", source)
    password = resolve_password(values, res.provenance, env, read_secret or read_first_line)

    sqlite_path = values["database.sqlite_path"] or os.path.join(
        env.get("STATE_DIRECTORY", "").split(":")[0] or "/var/lib/vfs-notifier", "videos.sqlite3")
    log_directory = values["logging.directory"] or (
        env.get("LOGS_DIRECTORY", "").split(":")[0] or "/var/log/vfs-notifier")
    if not values["database.sqlite_path"]:
        res.provenance["database.sqlite_path"] = (sqlite_path, _directory_default("STATE_DIRECTORY", env))
    if not values["logging.directory"]:
        res.provenance["logging.directory"] = (log_directory, _directory_default("LOGS_DIRECTORY", env))

    roots = _resolve_roots(res, data, values["urls.base_url"], values["urls.base_path"])
    warnings: list[str] = []
    copy_to = _resolve_copy_to(res, values, roots, warnings)
    database = Database(host=db_host, port=values["database.port"], socket=db_socket,
                        user=values["database.user"], name=values["database.name"],
                        password=password, sqlite_path=sqlite_path, nodes=nodes,
                        lease_seconds=values["database.lease_seconds"])
    return Settings(
        database=database, roots=roots, nginx_root=values["urls.nginx_root"],
        poll_interval=values["service.poll_interval"],
        rescan_interval=values["service.rescan_interval"],
        forget_removed=values["service.forget_removed"],
        extensions=values["service.extensions"],
        log_directory=log_directory, log_level=values["logging.level"],
        check_structure=values["registration.check_structure"],
        ignore=values["registration.ignore"],
        settle_seconds=values["registration.settle_seconds"],
        registration_mode=values["registration.mode"], copy_to=copy_to,
        provenance=res.provenance, warnings=tuple(warnings),
    )


def _directory_default(variable: str, env: Mapping[str, str]) -> str:
    """Where a default directory came from: systemd's StateDirectory=/LogsDirectory= (which
    set the variable), or the built-in path."""
    if env.get(variable, "").split(":")[0]:
        return f"default: ${variable}, which systemd set"
    return f"default, as ${variable} is unset"


def _resolve_roots(res: Resolver, data: Mapping[str, Any], base_url: str, base_path: str) -> tuple[Root, ...]:
    tables: list[dict[str, Any]] = [dict(t) for t in data.get("roots", [])]
    for index, names in ROOT_ENV.items():
        # An empty CLIENT_VIDEO_DIR= is an error ("empty"); the second root is optional, and
        # an old .env's empty STORAGE_PC_VIDEO_DIR= / STORAGE_PC_BASE_URL= means "not used".
        if any(res.env.get(var) is not None if index == 0 else res.env.get(var)
               for var in names.values()):
            while len(tables) <= index:
                tables.append({})
    roots = []
    for index, table in enumerate(tables):
        names = ROOT_ENV.get(index, {})

        def one(name: str, default: Any = None, optional: bool = False, note: str = "") -> Any:
            env_vars = (names[name],) if name in names else ()
            return res.get(f"roots[{index}].{name}", env_vars, ROOT_KEYS[name], table.get(name),
                           default=default, optional=optional, note=note)

        path = one("path")
        root_url = one("base_url", default=base_url, note="urls.base_url")
        root_base = one("base_path", default=base_path, note="urls.base_path")
        if os.path.commonpath([path, root_base]) != root_base:
            setting = names.get("path", f"roots[{index}].path")
            source = res.provenance[f"roots[{index}].path"][1]
            raise ConfigError(setting, f"{path} is not below BASE_PATH {root_base}, so its files "
                              f"have no URL", source)
        if len(path) > MAIN_DIR_CHARS:
            # Every row of this root would be refused by the table (main_dir varchar(512)).
            setting = names.get("path", f"roots[{index}].path")
            source = res.provenance[f"roots[{index}].path"][1]
            raise ConfigError(setting, f"{len(path)} characters long; the table's main_dir column "
                              f"holds {MAIN_DIR_CHARS}", source)
        roots.append(Root(path=path, base_url=root_url, base_path=root_base))
    if not roots:
        raise ConfigError("roots[0].path (CLIENT_VIDEO_DIR)",
                          f"required, set neither in {res.file_label} nor in the environment")
    paths = [r.path for r in roots]
    for later, b in enumerate(paths):
        for a in paths[:later]:
            # Named after the later of the two roots, with its own source: the variable
            # (STORAGE_PC_VIDEO_DIR) or the file, whichever set it.
            setting, source = res.setting_and_source(f"roots[{later}].path")
            if a == b:
                raise ConfigError(setting, f"{b} is watched twice", source)
            if os.path.commonpath([a, b]) in (a, b):
                inner, outer = (b, a) if os.path.commonpath([a, b]) == a else (a, b)
                raise ConfigError(setting, f"{inner} lies inside another watched root {outer}", source)
    return tuple(roots)


def _resolve_copy_to(res: Resolver, values: dict[str, Any], roots: tuple[Root, ...],
                     warnings: list[str]) -> str:
    """registration.copy_to, checked against the mode and the roots: "" in in-place mode.

    The copies' directory is never watched (a copy must not be seen as a new upload) and
    lies below BASE_PATH (a copy's URL is made from it, like any file's)."""
    copy_to = values["registration.copy_to"]
    mode = values["registration.mode"]
    if mode != "copy":
        if copy_to:
            setting, source = res.setting_and_source("registration.copy_to")
            warnings.append(f"{setting} is set ({copy_to}, from {source}) but unused: "
                            f"registration.mode is {mode}, so files are registered where they are, "
                            f"in the watched directories; set VFS_NOTIFIER_REGISTRATION_MODE=copy "
                            f"(or [registration] mode = \"copy\") to copy them there first")
        return ""
    if not copy_to:
        mode_source = res.provenance["registration.mode"][1]
        raise ConfigError("registration.copy_to (INTERNAL_VIDEO_FOLDER_PATH)",
                          f"required when registration.mode is copy ({mode_source}), set neither "
                          f"in {res.file_label} nor in the environment")
    setting, source = res.setting_and_source("registration.copy_to")
    for root in roots:
        common = os.path.commonpath([copy_to, root.path])
        if common == root.path:
            where = "is" if copy_to == root.path else "lies inside"
            raise ConfigError(setting, f"{copy_to} {where} the watched directory {root.path}: copies "
                              f"would be seen as new files", source)
        if common == copy_to:
            raise ConfigError(setting, f"the watched directory {root.path} lies inside {copy_to}: "
                              f"copies would be seen as new files", source)
    if len(roots) > 1:
        later, later_source = res.setting_and_source("roots[1].path")
        raise ConfigError(later, f"copy mode copies one watched directory into {copy_to}; the files "
                          f"of a second one could overwrite the first one's copies", later_source)
    base_path = roots[0].base_path
    if os.path.commonpath([copy_to, base_path]) != base_path:
        raise ConfigError(setting, f"{copy_to} is not below BASE_PATH {base_path}, so copies "
                          f"would have no URL", source)
    return copy_to
