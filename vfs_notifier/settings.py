"""Settings: one pure merge of the TOML file, the environment and the defaults.

Every setting has one name across TOML, code and docs (``database.port``) and, where
the earlier service had one, its environment variable (``MYSQL_PORT``), which wins
over the file. Each resolved value remembers where it came from, so that an error
names the setting and its source and ``check-config`` can show both.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional
from urllib.parse import urlsplit

DEFAULT_CONFIG = "/etc/vfs-notifier.toml"
EX_CONFIG = 78


class ConfigError(Exception):
    """A setting that cannot be used; str() is the one line the user sees."""

    def __init__(self, setting: str, problem: str, source: str = "") -> None:
        self.setting, self.problem, self.source = setting, problem, source
        super().__init__(f"{setting}: {problem}" + (f" (from {source})" if source else ""))


@dataclass(frozen=True)
class Root:
    """One watched tree and how its files map to URLs."""

    path: str          # what is watched, always; main_dir and the prefix of des_video_path
    base_url: str
    base_path: str

    @property
    def watch_path(self) -> str:
        """Where this process watches the root: `path` itself. A container mounts the
        directory at the same path inside as outside, so no mapping is needed."""
        return self.path


@dataclass(frozen=True)
class Database:
    host: str
    port: int
    socket: str
    user: str
    name: str
    password: str = field(repr=False)
    sqlite_path: str
    # More servers of one cluster (or a primary and its failover), tried in order after
    # `host`: (host, port) each. MYSQL_HOST keeps meaning the one host it always meant.
    nodes: tuple[tuple[str, int], ...] = ()
    # How long a root's lease lasts unless renewed (renewed every poll_interval).
    lease_seconds: float = 15.0

    @property
    def uses_mysql(self) -> bool:
        return bool(self.host or self.socket or self.nodes)

    @property
    def servers(self) -> tuple[tuple[str, int], ...]:
        """Every server to try, in order: `host` first, then `nodes` (each once)."""
        listed = ([(self.host, self.port)] if self.host else []) + list(self.nodes)
        return tuple(dict.fromkeys(listed))


@dataclass(frozen=True)
class Settings:
    database: Database
    roots: tuple[Root, ...]
    nginx_root: str
    poll_interval: float
    rescan_interval: float
    forget_removed: bool
    extensions: tuple[str, ...]
    log_directory: str
    log_level: str
    # What "finished" means (judge.py): the container framing check, the operator's ignore
    # globs on top of the built-in names, and the stability window where framing cannot tell.
    check_structure: bool = True
    ignore: tuple[str, ...] = ()
    settle_seconds: float = 2.0
    # "in-place": rows name the files where they are; "copy": each finished file is copied
    # below `copy_to` first and its row names the copy.
    registration_mode: str = "in-place"
    copy_to: str = ""
    # setting name -> (value as shown to people, where it came from)
    provenance: dict[str, tuple[str, str]] = field(default_factory=dict, compare=False, repr=False)
    warnings: tuple[str, ...] = field(default=(), compare=False, repr=False)


# --- value parsers: raw value -> value, or ValueError with the problem -------------

def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"not a string ({raw!r})")
    return raw


def _path(raw: Any) -> str:
    text = _text(raw)
    if not text:
        raise ValueError("empty")
    if not os.path.isabs(text):
        raise ValueError(f"not an absolute path ({text!r})")
    return os.path.normpath(text)


def _url(raw: Any) -> str:
    text = _text(raw).strip()
    if not text:
        raise ValueError("empty")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not a URL starting with http:// or https:// ({text!r})")
    if parts.query or parts.fragment:
        raise ValueError(f"a base URL takes no query or fragment ({text!r})")
    return text.rstrip("/")


def _port(raw: Any) -> int:
    number = _integer(raw)
    if not 1 <= number <= 65535:
        raise ValueError(f"not a port number 1-65535 ({raw!r})")
    return number


def _integer(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"not a number ({raw!r})")
    if isinstance(raw, int):
        return raw
    try:
        return int(_text(raw).strip())
    except ValueError:
        raise ValueError(f"not a number ({raw!r})") from None


def _seconds(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"not a number of seconds ({raw!r})")
    try:
        value = float(raw) if isinstance(raw, (int, float)) else float(_text(raw).strip())
    except ValueError:
        raise ValueError(f"not a number of seconds ({raw!r})") from None
    if not 0 <= value < 10**7 or value != value:
        raise ValueError(f"not a number of seconds from 0 up ({raw!r})")
    return value


def _positive_seconds(raw: Any) -> float:
    value = _seconds(raw)
    if value <= 0:
        raise ValueError(f"must be more than 0 seconds ({raw!r})")
    return value


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = _text(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not true or false ({raw!r})")


def _extensions(raw: Any) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) and not isinstance(items, tuple):
        raise ValueError(f"not a list of file name endings ({raw!r})")
    cleaned = tuple(_text(item).strip().lstrip(".").lower() for item in items)
    if not cleaned or not all(cleaned) or any("/" in e for e in cleaned):
        raise ValueError(f"not a list of file name endings ({raw!r})")
    return cleaned


def _nodes(raw: Any) -> tuple[str, ...]:
    """Database servers as "host" or "host:port" ("[v6addr]:port"): a TOML list, or one
    comma-separated string (the environment). Kept as text; Database.nodes has the pairs."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"not a list of host[:port] ({raw!r})")
    nodes = tuple(item.strip() for item in items if item.strip())
    for node in nodes:
        split_node(node, 3306)
    return nodes


def split_node(node: str, default_port: int) -> tuple[str, int]:
    """("host", port) of "host", "host:port", "[v6]" or "[v6]:port"; ValueError if not one."""
    host, port = node, ""
    if node.startswith("["):
        host, _, rest = node[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"not host[:port] ({node!r})")
        port = rest[1:]
    elif node.count(":") == 1:
        host, port = node.split(":")
    if not host or any(c.isspace() or c in "/@" for c in host):
        raise ValueError(f"not host[:port] ({node!r})")
    if not port:
        return host, default_port
    try:
        return host, _port(port)
    except ValueError:
        raise ValueError(f"not host[:port]: the port is not a number 1-65535 ({node!r})") from None


def _globs(raw: Any) -> tuple[str, ...]:
    """Glob patterns: a TOML list, or one comma-separated string (the environment)."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"not a list of glob patterns ({raw!r})")
    patterns = tuple(item.strip() for item in items if item.strip())
    for pattern in patterns:
        if "\0" in pattern or pattern.startswith("/"):
            raise ValueError(f"not a glob relative to a watched root ({pattern!r})")
    return patterns
REGISTRATION_MODES = ("in-place", "copy")


def _mode(raw: Any) -> str:
    text = _text(raw).strip().lower()
    if text not in REGISTRATION_MODES:
        raise ValueError(f"not one of {', '.join(REGISTRATION_MODES)} ({raw!r})")
    return text


def _level(raw: Any) -> str:
    text = _text(raw).strip().lower()
    if text not in ("debug", "info", "warning", "error"):
        raise ValueError(f"not one of debug, info, warning, error ({raw!r})")
    return text


@dataclass(frozen=True)
class _Spec:
    key: str                  # TOML name: "section.name"
    env: tuple[str, ...]      # environment variables, first found wins
    parse: Callable[[Any], Any]
    default: Any = None       # None: required (unless `optional`)
    optional: bool = False    # an unset or empty optional value is ""
    unset_means: str = ""     # what an unset optional setting does, for check-config


_SPECS = (
    _Spec("database.host", ("MYSQL_HOST",), _text, optional=True,
          unset_means="no server: the embedded SQLite store"),
    _Spec("database.port", ("MYSQL_PORT",), _port, 3306),
    _Spec("database.socket", ("MYSQL_SOCKET",), _path, optional=True,
          unset_means="TCP to database.host:database.port"),
    _Spec("database.user", ("MYSQL_USER",), _text, optional=True,
          unset_means="none; required with a MySQL server"),
    _Spec("database.name", ("MYSQL_DB_NAME",), _text, optional=True,
          unset_means="none; required with a MySQL server"),
    _Spec("database.password", ("MYSQL_PASS",), _text, optional=True,
          unset_means="no password, unless database.password_file or the systemd credential "
                      "mysql-password gives one"),
    _Spec("database.password_file", ("MYSQL_PASS_FILE",), _path, optional=True, unset_means="none"),
    _Spec("database.sqlite_path", ("VFS_NOTIFIER_SQLITE_PATH",), _path, optional=True),
    _Spec("database.nodes", ("VFS_NOTIFIER_DATABASE_NODES",), _nodes, optional=True,
          unset_means="database.host only"),
    _Spec("database.lease_seconds", ("VFS_NOTIFIER_LEASE_SECONDS",), _positive_seconds, 15.0),
    _Spec("urls.base_url", ("NGINX_BASE_URL",), _url),
    _Spec("urls.base_path", ("BASE_PATH",), _path),
    _Spec("urls.nginx_root", ("NGINX_INTERNAL_PATH", "NGINX_SERVE_DIRECTORY"), _path, optional=True,
          unset_means="nginx sees the files at urls.base_path"),
    _Spec("service.poll_interval", ("FOLDER_POLL_INTERVAL",), _positive_seconds, 5.0),
    _Spec("service.rescan_interval", ("VFS_NOTIFIER_RESCAN_INTERVAL",), _seconds, 0.0),
    _Spec("service.forget_removed", ("VFS_NOTIFIER_FORGET_REMOVED",), _boolean, True),
    _Spec("service.extensions", ("VFS_NOTIFIER_EXTENSIONS",), _extensions, ("mp4", "avi", "mov", "mkv")),
    _Spec("registration.check_structure", ("VFS_NOTIFIER_CHECK_STRUCTURE",), _boolean, True),
    _Spec("registration.ignore", ("VFS_NOTIFIER_IGNORE",), _globs, ()),
    _Spec("registration.settle_seconds", ("VFS_NOTIFIER_SETTLE_SECONDS",), _seconds, 2.0),
    _Spec("logging.directory", ("LOG_BASE_DIRECTORY",), _path, optional=True),  # default: below
    _Spec("logging.level", ("VFS_NOTIFIER_LOG_LEVEL",), _level, "info"),
    _Spec("registration.mode", ("VFS_NOTIFIER_REGISTRATION_MODE",), _mode, "in-place"),
    # The earlier service's "internal directory for video processing": where copy mode copies to.
    _Spec("registration.copy_to", ("INTERNAL_VIDEO_FOLDER_PATH",), _path, optional=True,
          unset_means="none; required when registration.mode is copy"),
)

# Keys of one [[roots]] table, and the environment variables of the earlier
# service's two directories: CLIENT_VIDEO_DIR is the first root, STORAGE_PC_* the second.
_ROOT_KEYS = {"path": _path, "base_url": _url, "base_path": _path}
_ROOT_ENV = {
    0: {"path": "CLIENT_VIDEO_DIR"},
    1: {"path": "STORAGE_PC_VIDEO_DIR", "base_url": "STORAGE_PC_BASE_URL"},
}
RETIRED_INTERNAL_PATH = (
    "no longer a setting: `path` is watched where it is (in a container, mount the directory "
    "at the same path inside as outside); INTERNAL_VIDEO_FOLDER_PATH is registration.copy_to")
CREDENTIAL_NAME = "mysql-password"
UNSET = "(unset)"   # how check-config shows an optional setting nobody set
MAIN_DIR_CHARS = 512   # `main_dir` varchar(512): a watched root's path must fit
SECRET_KEYS = frozenset({"database.password"})


def _env_label(var: str) -> str:
    return f"environment ({var})"


class _Resolver:
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
            self.provenance[key] = (_show(default), source)
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
        label = _env_label(name) if source == "environment" else source
        self.provenance[key] = ("(hidden)" if key in SECRET_KEYS else _show(value), label)
        return value


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _section(data: Mapping[str, Any], name: str, file_label: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(name, "must be a [table]", file_label)
    return value


def _check_unknown_keys(data: Mapping[str, Any], file_label: str) -> None:
    known: dict[str, set[str]] = {}
    for spec in _SPECS:
        section, name = spec.key.split(".")
        known.setdefault(section, set()).add(name)
    for section, body in data.items():
        if section == "roots":
            if not isinstance(body, list) or not all(isinstance(t, dict) for t in body):
                raise ConfigError("roots", "must be a list of [[roots]] tables", file_label)
            for index, table in enumerate(body):
                for name in table:
                    if name == "internal_path":
                        raise ConfigError(f"roots[{index}].internal_path", RETIRED_INTERNAL_PATH, file_label)
                    if name not in _ROOT_KEYS:
                        raise ConfigError(f"roots[{index}].{_toml_key(name)}", "unknown setting", file_label)
            continue
        if section not in known:
            raise ConfigError(_toml_key(section), "unknown section", file_label)
        for name in _section(data, section, file_label):
            if name not in known[section]:
                raise ConfigError(f"{section}.{_toml_key(name)}", "unknown setting", file_label)


def _toml_key(name: str) -> str:
    """An unknown key as TOML would write it: quoted when empty or not a bare key, so that
    the one-line error always names something and stays one line."""
    if name and all(c.isascii() and (c.isalnum() or c in "-_") for c in name):
        return name
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else json.dumps(c)[1:-1]
                         for c in name) + '"'


def _resolve_roots(res: _Resolver, data: Mapping[str, Any], base_url: str, base_path: str) -> tuple[Root, ...]:
    tables: list[dict[str, Any]] = [dict(t) for t in data.get("roots", [])]
    for index, names in _ROOT_ENV.items():
        # An empty CLIENT_VIDEO_DIR= is an error ("empty"); the second root is optional, and
        # an old .env's empty STORAGE_PC_VIDEO_DIR= / STORAGE_PC_BASE_URL= means "not used".
        if any(res.env.get(var) is not None if index == 0 else res.env.get(var)
               for var in names.values()):
            while len(tables) <= index:
                tables.append({})
    roots = []
    for index, table in enumerate(tables):
        names = _ROOT_ENV.get(index, {})

        def one(name: str, default: Any = None, optional: bool = False, note: str = "") -> Any:
            env_vars = (names[name],) if name in names else ()
            return res.get(f"roots[{index}].{name}", env_vars, _ROOT_KEYS[name], table.get(name),
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
    paths = [r.watch_path for r in roots]
    for later, b in enumerate(paths):
        for a in paths[:later]:
            # Named after the later of the two roots, with its own source: the variable
            # (STORAGE_PC_VIDEO_DIR) or the file, whichever set it.
            setting, source = _root_setting(res, later)
            if a == b:
                raise ConfigError(setting, f"{b} is watched twice", source)
            if os.path.commonpath([a, b]) in (a, b):
                inner, outer = (b, a) if os.path.commonpath([a, b]) == a else (a, b)
                raise ConfigError(setting, f"{inner} lies inside another watched root {outer}", source)
    return tuple(roots)


def _root_setting(res: _Resolver, index: int) -> tuple[str, str]:
    """The name and source of root `index`'s watched directory, for an error about it."""
    key = f"roots[{index}].path"
    source = res.provenance.get(key, ("", res.file_label))[1]
    if source.startswith("environment ("):
        return source[len("environment ("):-1], "environment"
    return key, source


def resolve(data: Mapping[str, Any], file_label: str, env: Mapping[str, str],
            read_secret: Optional[Callable[[str], str]] = None) -> Settings:
    """Merge the parsed TOML `data`, the environment and the defaults into Settings.

    Pure except for `read_secret`, which reads a password file (tests pass a fake).
    Raises ConfigError naming the first setting that cannot be used.
    """
    _check_unknown_keys(data, file_label)
    res = _Resolver(data, file_label, env)
    values: dict[str, Any] = {}
    for spec in _SPECS:
        section, name = spec.key.split(".")
        file_value = _section(data, section, file_label).get(name)
        values[spec.key] = res.get(spec.key, spec.env, spec.parse, file_value,
                                   default=spec.default, optional=spec.optional, note=spec.unset_means)

    db_host, db_socket = values["database.host"], values["database.socket"]
    nodes = tuple(split_node(n, values["database.port"]) for n in values["database.nodes"])
    if db_host or db_socket or nodes:
        for key, var in (("database.user", "MYSQL_USER"), ("database.name", "MYSQL_DB_NAME")):
            if not values[key]:
                raise ConfigError(f"{key} ({var})", "required when a MySQL server is configured "
                                  "(database.host / MYSQL_HOST, database.nodes)")
    if values["database.lease_seconds"] < 2 * values["service.poll_interval"]:
        setting, source = _setting_and_source(res, "database.lease_seconds")
        raise ConfigError(setting, f"{_show(values['database.lease_seconds'])} s is less than two "
                          f"service.poll_interval ({_show(values['service.poll_interval'])} s): the "
                          f"lease, renewed every poll, would lapse between renewals", source)
    password = _resolve_password(res, values, read_secret or _read_first_line)

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


def _resolve_copy_to(res: _Resolver, values: dict[str, Any], roots: tuple[Root, ...],
                     warnings: list[str]) -> str:
    """registration.copy_to, checked against the mode and the roots: "" in in-place mode.

    The copies' directory is never watched (a copy must not be seen as a new upload) and
    lies below BASE_PATH (a copy's URL is made from it, like any file's)."""
    copy_to = values["registration.copy_to"]
    mode = values["registration.mode"]
    if mode != "copy":
        if copy_to:
            setting, source = _setting_and_source(res, "registration.copy_to")
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
    setting, source = _setting_and_source(res, "registration.copy_to")
    for index, root in enumerate(roots):
        common = os.path.commonpath([copy_to, root.path])
        if common == root.path:
            where = "is" if copy_to == root.path else "lies inside"
            raise ConfigError(setting, f"{copy_to} {where} the watched directory {root.path}: copies "
                              f"would be seen as new files", source)
        if common == copy_to:
            raise ConfigError(setting, f"the watched directory {root.path} lies inside {copy_to}: "
                              f"copies would be seen as new files", source)
    if len(roots) > 1:
        later, later_source = _root_setting(res, 1)
        raise ConfigError(later, f"copy mode copies one watched directory into {copy_to}; the files "
                          f"of a second one could overwrite the first one's copies", later_source)
    base_path = roots[0].base_path
    if os.path.commonpath([copy_to, base_path]) != base_path:
        raise ConfigError(setting, f"{copy_to} is not below BASE_PATH {base_path}, so copies "
                          f"would have no URL", source)
    return copy_to


def _setting_and_source(res: _Resolver, key: str) -> tuple[str, str]:
    """A resolved setting's name as the user set it (the variable, or the TOML key) and source."""
    label = res.provenance[key][1]
    if label.startswith("environment ("):
        return label[len("environment ("):-1], "environment"
    return key, label


def _resolve_password(res: _Resolver, values: dict[str, Any], read_secret: Callable[[str], str]) -> str:
    """The password: set directly, else read from a file, else from a systemd credential."""
    if values["database.password"]:
        return values["database.password"]
    if values["database.password_file"]:
        path = values["database.password_file"]
        source = res.provenance["database.password_file"][1]
        try:
            secret = read_secret(path)
        except OSError as err:
            if source.startswith("environment"):
                raise ConfigError("MYSQL_PASS_FILE", f"cannot read {path}: {err.strerror}", "environment") from None
            raise ConfigError("database.password_file", f"cannot read {path}: {err.strerror}", source) from None
        res.provenance["database.password"] = ("(hidden)", f"file {path}")
        return secret
    cred_dir = res.env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        path = os.path.join(cred_dir, CREDENTIAL_NAME)
        try:
            secret = read_secret(path)
        except FileNotFoundError:
            return ""
        except OSError as err:
            raise ConfigError("CREDENTIALS_DIRECTORY", f"cannot read {path}: {err.strerror}",
                              "environment") from None
        res.provenance["database.password"] = ("(hidden)", f"systemd credential {CREDENTIAL_NAME}")
        return secret
    return ""


def _read_first_line(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.readline().rstrip("\r\n")


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
    warnings = list(settings.warnings)
    if _section(data, "database", path).get("password") and mode & 0o004:
        warnings.append(f"{path} holds a database password and every user can read it: "
                        f"chmod o-r {path}")
    return replace(settings, warnings=tuple(warnings)) if warnings else settings
