"""The burst writer: a separate process that writes N small files as fast as it can.

`python3 -m bench.writer [--mkdir] COUNT TAG DIR...` spreads the files over the directories and
prints, as JSON, when it started and when it closed its last file (time.time(), comparable across
processes). With --mkdir it creates the directories first (a burst into brand-new directories:
the service meets files that were written before it could watch their directory). Every file is a
real MP4 clip (bench/media.py, found through BENCH_MEDIA_DIR).
"""
from __future__ import annotations

import json
import os
import sys
import time

from . import media


def main(argv: list[str]) -> int:
    mkdir = argv[:1] == ["--mkdir"]
    if mkdir:
        argv = argv[1:]
    count, tag, dirs = int(argv[0]), argv[1], argv[2:]
    payload = media.clips().payload("x.mp4")
    t_start = time.time()
    if mkdir:
        for d in dirs:
            os.mkdir(d)
    fds = [os.open(d, os.O_RDONLY | os.O_DIRECTORY) for d in dirs]   # no path walk per file
    flags, k = os.O_WRONLY | os.O_CREAT | os.O_EXCL, len(fds)
    for i in range(count):
        fd = os.open(f"burst {tag} {i:06d} – prise d'été #{i % 7}.mp4", flags, 0o644, dir_fd=fds[i % k])
        os.write(fd, payload)
        os.close(fd)
    t_last_close = time.time()
    print(json.dumps({"files": count, "t_start": t_start, "t_last_close": t_last_close}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
