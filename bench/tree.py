"""Generates the trees the contenders work on: N small video files spread over D directories.

Names look like the ones users have: spaces, an apostrophe, '#', '%', letters outside ASCII,
upper-case extensions. The same arguments always give the same tree. Every file is a real clip
in the container its extension names (bench/media.py).
"""
from __future__ import annotations

import os

from . import media

DIR_NAMES = ("Kunde {d:04d} – Projekt", "client_{d:04d}", "Réunion {d:04d}", "会议 {d:04d}",
             "Season {d:04d} (2024)")
FILE_NAMES = ("Kamera {i:06d} – Übung.mp4", "clip_{i:06d}.MOV", "Réunion d'équipe {i:06d}.mkv",
              "会议记录 {i:06d}.avi", "Family trip #{i:06d} 100% done.mp4", "take {i:06d}.Mp4")


def dir_name(d: int) -> str:
    return DIR_NAMES[d % len(DIR_NAMES)].format(d=d)


def file_name(i: int) -> str:
    return FILE_NAMES[i % len(FILE_NAMES)].format(i=i)


def write_file(path: str) -> None:
    media.clips().write(path)


def generate(root: str, files: int, dirs: int) -> int:
    """Create `files` files in `dirs` directories below root (two levels: groups of 100 dirs)."""
    os.makedirs(root, exist_ok=True)
    made = 0
    clips = media.clips()
    for d in range(dirs):
        directory = os.path.join(root, f"group {d // 100:03d}", dir_name(d))
        os.makedirs(directory, exist_ok=True)
        share = files // dirs + (1 if d < files % dirs else 0)
        for _ in range(share):
            clips.write(os.path.join(directory, file_name(made)))
            made += 1
    return made


def count_dirs(root: str) -> int:
    return sum(1 for _ in os.walk(root))
