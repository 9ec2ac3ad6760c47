"""What every test server fixture (mariadbd, a Galera node, nginx, sshd) says when it cannot
start: the server's own last lines, never a bare exit status.

A fixture that throws a server's output away turns "Disk got full writing
'information_schema.(temporary)'" into "exited 1" a hundred times over, and whoever reads the
report has to reproduce the run to learn why.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Union

TAIL_LINES = 25


def last_lines(path: Union[Path, str], n: int = TAIL_LINES) -> str:
    """The last `n` lines of a log file, or a line saying why there are none to show."""
    try:
        with open(path, errors="replace") as handle:
            tail = deque(handle, maxlen=n)
    except FileNotFoundError:
        return f"({path} was never written)"
    except OSError as err:
        return f"({path}: {err.strerror})"
    return "".join(tail).rstrip("\n") or f"({path} is empty)"


def tail_of(text: str, n: int = TAIL_LINES) -> str:
    """The last `n` lines of a program's captured output."""
    lines = text.rstrip("\n").splitlines()
    return "\n".join(lines[-n:]) or "(no output)"


class ServerFailed(RuntimeError):
    """A test server did not start. The message ends with the server's own last lines, so the
    report says why (a full disk, a port taken, a missing file) without a rerun."""

    def __init__(self, what: str, said: str) -> None:
        super().__init__(f"{what}; its last lines:\n{said}")
        self.what = what
        self.said = said
