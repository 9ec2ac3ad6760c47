"""Which directory each inotify watch stands for, kept as a tree of paths.

A directory that leaves (rm -rf, moved away) takes every watch below it along, and a
directory renamed inside the tree carries its watches to the new path. Both are answered
here in time proportional to the subtree, never to the number of watches: a scan of
every watch per removed directory made rm -rf of 30,000 directories a minute's stall.
"""

from __future__ import annotations

from typing import Optional


def _parent(path: str) -> str:
    return path.rpartition("/")[0] or "/"


class WatchIndex:
    """Watch descriptor <-> directory path, plus each directory's indexed subdirectories.

    A path is a node of the tree while it is watched or has watched directories below it
    (an unwatched one in between: refused by the watch limit, or a root's parents). Every
    node but "/" is listed in its parent's set of children.
    """

    def __init__(self) -> None:
        self.paths: dict[int, str] = {}        # wd -> directory (read directly by the event parser)
        self._wds: dict[str, int] = {}         # directory -> wd
        self._below: dict[str, set[str]] = {}  # node -> child nodes; absent when it has none

    def __len__(self) -> int:
        return len(self.paths)

    def wd(self, path: str) -> Optional[int]:
        return self._wds.get(path)

    def add(self, path: str, wd: int) -> None:
        """`path` is watched as `wd` now (the kernel gives a directory one wd, whatever its path)."""
        known = self.paths.get(wd)
        if known == path:
            return
        if known is not None:
            self.drop(wd)                      # the same directory, reached by another path now
        replaced = self._wds.get(path)
        if replaced is not None:
            del self.paths[replaced]           # another directory was at this path before
        self._wds[path] = wd
        self.paths[wd] = path
        if replaced is None:
            self._link(path)

    def drop(self, wd: int) -> Optional[str]:
        """Forget one watch (the kernel removed it: IN_IGNORED); its path, if it was indexed."""
        path = self.paths.pop(wd, None)
        if path is None:
            return None
        del self._wds[path]
        if path not in self._below:
            self._unlink(path)
        return path

    def remove_tree(self, top: str) -> list[int]:
        """Forget `top` and every watch below it; their wds, for the kernel to drop too."""
        wds: list[int] = []
        stack = [top]
        while stack:
            path = stack.pop()
            wd = self._wds.pop(path, None)
            if wd is not None:
                del self.paths[wd]
                wds.append(wd)
            children = self._below.pop(path, None)
            if children:
                stack.extend(children)
        self._unlink(top)
        return wds

    def move_tree(self, old: str, new: str) -> list[tuple[int, str]]:
        """Re-key `old` and everything below it to `new` (a rename); each moved (wd, new path).

        Whatever was indexed at `new` must have been removed first (a rename over an empty
        directory replaces it).
        """
        cut = len(old)
        wds: dict[str, int] = {}
        below: dict[str, set[str]] = {}
        stack = [old]
        while stack:
            path = stack.pop()
            renamed = new + path[cut:]
            wd = self._wds.pop(path, None)
            if wd is not None:
                wds[renamed] = wd
            children = self._below.pop(path, None)
            if children:
                below[renamed] = {new + child[cut:] for child in children}
                stack.extend(children)
        if not wds and not below:
            return []
        self._unlink(old)
        moved = []
        for path, wd in wds.items():
            self._wds[path] = wd
            self.paths[wd] = path
            moved.append((wd, path))
        self._below.update(below)
        self._link(new)
        return moved

    def _link(self, path: str) -> None:
        below, wds = self._below, self._wds
        while path != "/":
            parent = _parent(path)
            children = below.get(parent)
            if children is not None:
                children.add(path)
                return
            below[parent] = {path}
            if parent in wds:
                return
            path = parent                      # a new node in between: link it too

    def _unlink(self, path: str) -> None:
        """Take a node that is gone out of its parent's children, pruning emptied nodes upward."""
        below, wds = self._below, self._wds
        while path != "/":
            parent = _parent(path)
            children = below.get(parent)
            if children is None:
                return
            children.discard(path)
            if children:
                return
            del below[parent]
            if parent in wds:
                return
            path = parent
