"""What the disk says now of a stored path: its version, whether it is the same file, whether
it is still a regular file. Asked at the moment a row is moved back or withdrawn."""

from __future__ import annotations

import os
import stat
from typing import Optional

from ..store import Version

NO_VERSION = Version(0, 0, 0, 0)


version_of = Version.of    # the version an lstat shows


def version_on_disk(path: str) -> Optional[Version]:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return version_of(st) if stat.S_ISREG(st.st_mode) else None


def same_file(path: str, version: Version) -> bool:
    on_disk = version_on_disk(path)
    return on_disk is not None and (on_disk.dev, on_disk.ino) == (version.dev, version.ino)


def is_regular_file(path: str) -> bool:
    """True for a regular file (not a link to one): a row's path must still be one."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True  # cannot tell (a permission problem): keep the row
