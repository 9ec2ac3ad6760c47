"""The burst writer: a separate process that writes N small files as fast as it can.

`python3 -m bench.writer COUNT DIR...` spreads the files over the directories and prints, as JSON,
when it started and when it closed its last file (time.time(), comparable across processes).
"""
from __future__ import annotations

import json
import os
import sys
import time

from .tree import write_file


def main(argv: list[str]) -> int:
    count, dirs = int(argv[0]), argv[1:]
    t_start = time.time()
    for i in range(count):
        write_file(os.path.join(dirs[i % len(dirs)], f"burst {i:06d} – prise.mp4"))
    t_last_close = time.time()
    print(json.dumps({"files": count, "t_start": t_start, "t_last_close": t_last_close}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
