"""One safe copy (copy mode), from the source to its destination.

A copy is written under a hidden temporary name in its destination directory
(`.vfs-notifier-copy.<name>.<random>`), by reflink where the file system can share
blocks, else `copy_file_range` (in the kernel, no bytes through Python), else
`sendfile`, else read/write; it gets the source's mtime, is fsynced, renamed into place,
and its directory fsynced. Only then is it reported complete, so a row can never name
a half copy. A destination that already has the source's size and mtime is complete
(a restart after the rename but before the row). Temporary files a killed process left
behind are found by their prefix (remove_stale_temporaries).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import secrets
import stat
import threading
from typing import Optional

from .rows import printable

log = logging.getLogger("vfs_notifier")

TEMP_PREFIX = ".vfs-notifier-copy."
NAME_MAX = 255                  # bytes in one file name (every Linux file system we meet)
CHUNK = 16 * 1024 * 1024        # bytes per system call: a stop request waits at most one chunk
FICLONE = 0x40049409            # linux/fs.h _IOW(0x94, 9, int)
# copy_file_range/sendfile/ioctl answers that mean "not here, try the next way".
NOT_OFFERED = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTTY,
                         errno.EBADF, errno.EPERM, errno.ETXTBSY})


class SourceGone(Exception):
    """The source is no longer a regular file: nothing to copy, and nothing to retry."""


class Stopped(Exception):
    """The stop event was set during the copy: its temporary file is removed, nothing is in place."""


def _make_directories(directory: str) -> None:
    """Create the missing directories down to `directory`, each 0755 whatever the umask,
    so that nginx can reach the copies."""
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for path in reversed(missing):
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        os.chmod(path, 0o755)


def temp_name(name: str) -> str:
    """`.vfs-notifier-copy.<name>.<random>`, shortened (never split inside a byte sequence
    that matters: surrogateescape keeps any bytes) to fit one file name."""
    suffix = "." + secrets.token_hex(4)
    room = NAME_MAX - len(TEMP_PREFIX) - len(suffix)
    raw = os.fsencode(name)[:room]
    return TEMP_PREFIX + os.fsdecode(raw) + suffix


def remove_stale_temporaries(directory: str) -> int:
    """Delete the temporary files of copies a stopped or killed process left below
    `directory`; never follows links. Returns how many went."""
    removed = 0
    for parent, dirs, files in os.walk(directory, followlinks=False):
        for name in files:
            if name.startswith(TEMP_PREFIX):
                try:
                    os.unlink(os.path.join(parent, name))
                    removed += 1
                except FileNotFoundError:
                    pass
                except OSError as err:
                    log.warning("cannot remove the stale temporary copy %s: %s",
                                printable(os.path.join(parent, name)), err.strerror)
    return removed


def copy_file(source: str, destination: str, stop: Optional[threading.Event] = None) -> str:
    """Copy `source` to `destination` safely; returns how ("done already", "reflink",
    "copy_file_range", "sendfile", "read/write"). Raises SourceGone, or OSError with the
    destination or source problem (its `filename` says which)."""
    try:
        src = os.open(source, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        raise SourceGone("gone before it could be copied") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise SourceGone("a symbolic link now") from None
        raise
    try:
        before = os.fstat(src)
        if not stat.S_ISREG(before.st_mode):
            raise SourceGone("not a regular file now")
        try:
            have = os.stat(destination, follow_symlinks=False)
            if (stat.S_ISREG(have.st_mode) and have.st_size == before.st_size
                    and have.st_mtime_ns == before.st_mtime_ns):
                return "done already"
        except FileNotFoundError:
            pass
        parent, name = os.path.split(destination)
        _make_directories(parent)
        temp = os.path.join(parent, temp_name(name))
        dst = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            # 0644 whatever the umask (the unit's is 0077): the copy is the service's, and
            # nginx serves it as another user.
            os.fchmod(dst, 0o644)
            try:
                how = _transfer(src, dst, stop)
                after = os.fstat(src)
                os.utime(dst, ns=(after.st_atime_ns, after.st_mtime_ns))
                os.fsync(dst)
            finally:
                os.close(dst)
            os.rename(temp, destination)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise
        _fsync_directory(parent)
        return how
    finally:
        os.close(src)


def _transfer(src: int, dst: int, stop: Optional[threading.Event]) -> str:
    try:
        fcntl.ioctl(dst, FICLONE, src)
        return "reflink"
    except OSError as err:
        if err.errno not in NOT_OFFERED:
            raise
    offset = 0
    for how in ("copy_file_range", "sendfile", "read/write"):
        try:
            while True:
                if stop is not None and stop.is_set():
                    raise Stopped()
                if how == "copy_file_range":
                    done = os.copy_file_range(src, dst, CHUNK, offset, offset)
                elif how == "sendfile":
                    os.lseek(dst, offset, os.SEEK_SET)
                    done = os.sendfile(dst, src, offset, CHUNK)
                else:
                    data = os.pread(src, 1024 * 1024, offset)
                    done = os.pwrite(dst, data, offset) if data else 0
                if done == 0:
                    return how
                offset += done
        except OSError as err:
            # A way the kernel does not offer here fails on its first call: the next way
            # carries on from the same offset.
            if how == "read/write" or err.errno not in NOT_OFFERED or offset:
                raise
    raise AssertionError("unreachable")


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

