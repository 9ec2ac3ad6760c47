"""The burst writer: a separate process that writes N small files as fast as it can.

`python3 -m bench.writer COUNT TAG DIR...` spreads the files over the directories and prints, as JSON,
when it started and when it closed its last file (time.time(), comparable across processes).
"""
from __future__ import annotations

import json
import os
import sys
import time

from .tree import PAYLOAD


def main(argv: list[str]) -> int:
    count, tag, dirs = int(argv[0]), argv[1], argv[2:]
    fds = [os.open(d, os.O_RDONLY | os.O_DIRECTORY) for d in dirs]   # no path walk per file
    flags, k = os.O_WRONLY | os.O_CREAT | os.O_EXCL, len(fds)
    t_start = time.time()
    for i in range(count):
        fd = os.open(f"burst {tag} {i:06d} – prise d'été #{i % 7}.mp4", flags, 0o644, dir_fd=fds[i % k])
        os.write(fd, PAYLOAD)
        os.close(fd)
    t_last_close = time.time()
    print(json.dumps({"files": count, "t_start": t_start, "t_last_close": t_last_close}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
