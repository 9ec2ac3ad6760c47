"""What the rest of the service reads: the resolved settings, and the error a wrong one raises."""

from __future__ import annotations

from dataclasses import dataclass, field

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
