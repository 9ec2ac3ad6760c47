"""The naive service: what a straightforward Python implementation does, one file at a time.

Each file: SELECT by path, INSERT if absent, COMMIT. `cold` walks the tree first (os.walk) and
registers each file; `watch` is a pyinotify IN_CLOSE_WRITE/IN_MOVED_TO handler doing the same per
event, and prints "ready" once its watches are in place.
"""
from __future__ import annotations

import os
import signal
import sys

import pyinotify

from .db import DbParams, connect, is_video, url_for


class Registrar:
    def __init__(self, params: DbParams, root: str, base_path: str, base_url: str) -> None:
        self.conn = connect(params)
        self.root, self.base_path, self.base_url = root, base_path, base_url

    def register(self, path: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute("SELECT id FROM videos WHERE des_video_path = %s", (path,))
            if cur.fetchone() is None:
                cur.execute("INSERT INTO videos (main_dir, des_video_path, status, des_url) "
                            "VALUES (%s, %s, 1, %s)",
                            (self.root, path, url_for(path, self.base_path, self.base_url)))
        self.conn.commit()


def cold(reg: Registrar) -> None:
    for top, _dirs, files in os.walk(reg.root):
        for name in files:
            if is_video(name):
                reg.register(os.path.join(top, name))


class Handler(pyinotify.ProcessEvent):
    def my_init(self, reg: Registrar) -> None:
        self.reg = reg

    def process_default(self, event: pyinotify.Event) -> None:
        if not event.dir and is_video(event.name):
            self.reg.register(event.pathname)


def watch(reg: Registrar) -> None:
    wm = pyinotify.WatchManager()
    notifier = pyinotify.Notifier(wm, Handler(reg=reg))
    wds = wm.add_watch(reg.root, pyinotify.IN_CLOSE_WRITE | pyinotify.IN_MOVED_TO, rec=True,
                       auto_add=True)
    failed = [path for path, wd in wds.items() if wd < 0]
    if failed:  # e.g. fs.inotify.max_user_watches used up by other processes: no figure then
        print(f"cannot watch {len(failed)} of {len(wds)} directories", flush=True)
        sys.exit(1)
    print("ready", flush=True)
    notifier.loop()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    e = os.environ
    reg = Registrar(DbParams.from_env(), e["CLIENT_VIDEO_DIR"], e["BASE_PATH"], e["NGINX_BASE_URL"])
    cold(reg) if argv[0] == "cold" else watch(reg)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
