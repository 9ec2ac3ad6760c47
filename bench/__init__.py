"""Benchmark harness for vfs-notifier (issue 4).

Runs vfs-notifier side by side with the alternatives users choose between (a per-file Python
service, an inotifywait shell loop) and with the limit the database and file system allow,
against a throwaway MariaDB, and writes docs/PERFORMANCE.md and docs/performance.png.
Entry point: `scripts/bench` (= `make bench`), or `/usr/bin/python3 -m bench`.
"""
