"""Value parsers: a raw value from TOML or the environment -> the value, or ValueError
saying what is wrong with it (the caller adds the setting's name and where it came from).

TOML gives typed values and the environment only strings, so each parser takes both.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

REGISTRATION_MODES = ("in-place", "copy")
LOG_LEVELS = ("debug", "info", "warning", "error")


def text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"not a string ({raw!r})")
    return raw


def path(raw: Any) -> str:
    value = text(raw)
    if not value:
        raise ValueError("empty")
    if not os.path.isabs(value):
        raise ValueError(f"not an absolute path ({value!r})")
    return os.path.normpath(value)


def url(raw: Any) -> str:
    value = text(raw).strip()
    if not value:
        raise ValueError("empty")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not a URL starting with http:// or https:// ({value!r})")
    if parts.query or parts.fragment:
        raise ValueError(f"a base URL takes no query or fragment ({value!r})")
    return value.rstrip("/")


def port(raw: Any) -> int:
    number = integer(raw)
    if not 1 <= number <= 65535:
        raise ValueError(f"not a port number 1-65535 ({raw!r})")
    return number


def integer(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"not a number ({raw!r})")
    if isinstance(raw, int):
        return raw
    try:
        return int(text(raw).strip())
    except ValueError:
        raise ValueError(f"not a number ({raw!r})") from None


def seconds(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"not a number of seconds ({raw!r})")
    try:
        value = float(raw) if isinstance(raw, (int, float)) else float(text(raw).strip())
    except ValueError:
        raise ValueError(f"not a number of seconds ({raw!r})") from None
    if not 0 <= value < 10**7 or value != value:
        raise ValueError(f"not a number of seconds from 0 up ({raw!r})")
    return value


def positive_seconds(raw: Any) -> float:
    value = seconds(raw)
    if value <= 0:
        raise ValueError(f"must be more than 0 seconds ({raw!r})")
    return value


def boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    word = text(raw).strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not true or false ({raw!r})")


def extensions(raw: Any) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) and not isinstance(items, tuple):
        raise ValueError(f"not a list of file name endings ({raw!r})")
    cleaned = tuple(text(item).strip().lstrip(".").lower() for item in items)
    if not cleaned or not all(cleaned) or any("/" in e for e in cleaned):
        raise ValueError(f"not a list of file name endings ({raw!r})")
    return cleaned


def nodes(raw: Any) -> tuple[str, ...]:
    """Database servers as "host" or "host:port" ("[v6addr]:port"): a TOML list, or one
    comma-separated string (the environment). Kept as text; Database.nodes has the pairs."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"not a list of host[:port] ({raw!r})")
    listed = tuple(item.strip() for item in items if item.strip())
    for node in listed:
        split_node(node, 3306)
    return listed


def split_node(node: str, default_port: int) -> tuple[str, int]:
    """("host", port) of "host", "host:port", "[v6]" or "[v6]:port"; ValueError if not one."""
    host, number = node, ""
    if node.startswith("["):
        host, _, rest = node[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"not host[:port] ({node!r})")
        number = rest[1:]
    elif node.count(":") == 1:
        host, number = node.split(":")
    if not host or any(c.isspace() or c in "/@" for c in host):
        raise ValueError(f"not host[:port] ({node!r})")
    if not number:
        return host, default_port
    try:
        return host, port(number)
    except ValueError:
        raise ValueError(f"not host[:port]: the port is not a number 1-65535 ({node!r})") from None


def globs(raw: Any) -> tuple[str, ...]:
    """Glob patterns: a TOML list, or one comma-separated string (the environment)."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"not a list of glob patterns ({raw!r})")
    patterns = tuple(item.strip() for item in items if item.strip())
    for pattern in patterns:
        if "\0" in pattern or pattern.startswith("/"):
            raise ValueError(f"not a glob relative to a watched root ({pattern!r})")
    return patterns


def mode(raw: Any) -> str:
    word = text(raw).strip().lower()
    if word not in REGISTRATION_MODES:
        raise ValueError(f"not one of {', '.join(REGISTRATION_MODES)} ({raw!r})")
    return word


def level(raw: Any) -> str:
    word = text(raw).strip().lower()
    if word not in LOG_LEVELS:
        raise ValueError(f"not one of {', '.join(LOG_LEVELS)} ({raw!r})")
    return word
