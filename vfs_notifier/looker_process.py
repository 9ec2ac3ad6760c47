"""The looker's helper process: reads the files the loop asks about (see looker.py).

Run as `python3 -S -c "...from vfs_notifier.looker_process import main..."` by looker.Looker;
it imports only what reading needs, so that it stays a small process.
"""

from __future__ import annotations

import marshal
import os
import signal
import stat
import struct
import sys
from typing import BinaryIO, Optional

from .judge import OPEN_FLAGS, look_at

FRAME = struct.Struct("<I")     # the length of the marshal frame that follows


def look(path: str) -> Optional[tuple]:
    """A Look (as a plain tuple) at `path`, or None if it is no readable regular file."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None     # never open a device or a FIFO: opening one can act on it
        fd = os.open(path, OPEN_FLAGS)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        found = look_at(fd, st, path.rpartition(".")[2].lower(), True)
        version, ctime = found.identity
        # marshal takes plain tuples only: equal, field by field, to (Version, ctime).
        return ((tuple(version), ctime), *found[1:])
    except OSError:
        return None
    finally:
        os.close(fd)


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer requests until the loop closes its end."""
    while True:
        head = requests.read(FRAME.size)
        if len(head) < FRAME.size:
            return
        paths = marshal.loads(_read_exactly(requests, FRAME.unpack(head)[0]))
        frame = marshal.dumps([look(path) for path in paths])
        answers.write(FRAME.pack(len(frame)) + frame)
        answers.flush()


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            raise EOFError
        data += more
    return data


def main() -> int:
    # The loop stops it by closing its pipe, after the last file it asked about: a stop or
    # reload signal sent to the whole unit must not end it first.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
