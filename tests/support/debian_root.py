"""A cached Debian 12 root tree with systemd, for tests that boot a real Debian.

debootstrap takes more than a minute, so the tree is built once under CACHE_DIR and reused by
every later run (and by every test that needs a Debian: the systemd-nspawn end-to-end test
boots it, the podman tests import its tarball as their base image). Callers must not write
into the tree: boot a throwaway copy or an overlay of it.

    base_tree() -> Path      the root directory (systemd, systemd-sysv, dbus, python3, apt lists)
    base_tarball() -> Path   the same tree as an uncompressed tar, for `podman import`

Both need root (debootstrap and nspawn do). Changing the recipe below (packages, suite,
RECIPE_VERSION) names a new cache entry, so a stale tree is never reused by mistake.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

CACHE_DIR = Path(os.environ.get("VFS_NOTIFIER_TEST_CACHE", "/var/cache/vfs-notifier-tests"))
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3")
RECIPE_VERSION = 1

DEBOOTSTRAP_TIMEOUT = 900  # seconds; about 75 s on a good day
SETUP_TIMEOUT = 300


def base_tree() -> Path:
    """The cached Debian 12 root directory, built by debootstrap on first use."""
    path = CACHE_DIR / _name()
    if path.is_dir():
        return path
    with _cache_lock():
        if not path.is_dir():  # another process may have built it while we waited
            _build_tree(path)
    return path


def base_tarball() -> Path:
    """base_tree() as a tar file (numeric owners, /dev /proc /sys /run left empty)."""
    path = CACHE_DIR / (_name() + ".tar")
    if path.is_file():
        return path
    tree = base_tree()
    with _cache_lock():
        if not path.is_file():
            tmp = path.with_name(path.name + ".partial")
            _run(["tar", "--numeric-owner", "--xattrs", "-C", str(tree), "-cf", str(tmp),
                  "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
                  "--exclude=./run/*", "."], timeout=SETUP_TIMEOUT)
            tmp.rename(path)
    return path


def _name() -> str:
    recipe = repr((SUITE, MIRROR, SECURITY_MIRROR, PACKAGES, RECIPE_VERSION)).encode()
    return f"debian-{SUITE}-{hashlib.sha256(recipe).hexdigest()[:12]}"


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_tree(path: Path) -> None:
    # Build beside the final place and rename at the end: a half-built tree is never seen.
    work = Path(tempfile.mkdtemp(prefix=path.name + ".", suffix=".partial", dir=CACHE_DIR))
    try:
        _run(["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES),
              SUITE, str(work), MIRROR], timeout=DEBOOTSTRAP_TIMEOUT)
        (work / "etc/apt/sources.list").write_text(
            f"deb {MIRROR} {SUITE} main\n"
            f"deb {MIRROR} {SUITE}-updates main\n"
            f"deb {SECURITY_MIRROR} {SUITE}-security main\n")
        # Package lists ship with the tree, so `apt install ./x.deb` works in it at once.
        _run(["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "-D", str(work),
              "--pipe", "--", "sh", "-c", "apt-get update -q && apt-get clean"],
             timeout=SETUP_TIMEOUT)
        # An empty machine-id: each boot gets a fresh one, as an image should.
        (work / "etc/machine-id").write_text("")
        with contextlib.suppress(FileNotFoundError):
            (work / "var/lib/dbus/machine-id").unlink()
        work.chmod(0o755)
        work.rename(path)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _run(cmd: list[str], timeout: float) -> None:
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}):\n"
                           f"{proc.stdout[-4000:]}")


if __name__ == "__main__":  # `python3 tests/support/debian_root.py [--tarball]` warms the cache
    import sys
    import time

    start = time.monotonic()
    print(base_tarball() if "--tarball" in sys.argv[1:] else base_tree())
    print(f"{time.monotonic() - start:.1f} s", file=sys.stderr)
