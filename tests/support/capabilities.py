"""What this machine lets a test do, asked of the machine itself rather than guessed from the
user id: root inside a container (systemd-nspawn, a CI runner, podman, LXC) is still root,
yet /proc/sys is read-only there, nspawn cannot make its cgroup and runc cannot make one either.

Each probe returns None when the capability is there, else one line saying what is missing and
how to get it, which is what the test skips with (`pytest -ra` lists it in the summary).
Probes change nothing on the machine, and each runs once per test session.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import pytest

# Where to run the tests a container cannot: its host, or a VM.
ON_A_HOST = "run ./scripts/test as root on a VM or host (not inside a container) to include it"


def skip_unless(reason: Optional[str]) -> None:
    """Skip the calling test with `reason` unless it is None (the capability is there)."""
    if reason is not None:
        pytest.skip(reason)


@functools.lru_cache(maxsize=None)
def can_write_sysctl(name: str) -> Optional[str]:
    """Whether /proc/sys/<name> (dots for slashes) can be set: the current value is written
    back to it, which is the real test (a read-only /proc/sys refuses even that)."""
    path = Path("/proc/sys") / name.replace(".", "/")
    if os.geteuid() != 0:
        return f"setting {name} needs root; as root: ./scripts/test"
    try:
        value = path.read_text()
        with open(path, "w") as handle:
            handle.write(value)
    except OSError as err:
        return (f"cannot set {name} ({path}: {err.strerror}): /proc/sys is read-only in this "
                f"container; {ON_A_HOST}")
    return None


@functools.lru_cache(maxsize=None)
def can_boot_nspawn() -> Optional[str]:
    """Whether systemd-nspawn can start a container here: it runs `true` in a throwaway
    (volatile) view of this machine's own /usr, which makes the same cgroup a boot does."""
    if os.geteuid() != 0:
        return "systemd-nspawn needs root; as root: ./scripts/test"
    if not shutil.which("systemd-nspawn"):
        return "systemd-nspawn is missing; as root: apt-get install systemd-container"
    try:
        proc = subprocess.run(["systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
                               "--directory=/", "--volatile=yes", "--", "/bin/true"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return f"systemd-nspawn did not start a container within 60 s; {ON_A_HOST}"
    if proc.returncode != 0:
        said = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return f"systemd-nspawn cannot start a container here ({said}); {ON_A_HOST}"
    return None


@functools.lru_cache(maxsize=None)
def can_run_podman() -> Optional[str]:
    """Whether runc can make the cgroups a podman container needs (with the cgroupfs manager
    these machines use): a directory is made in each cgroup hierarchy and removed again."""
    if os.geteuid() != 0:
        return "podman builds and runs images only as root here; as root: ./scripts/test"
    cgroup = Path("/sys/fs/cgroup")
    if (cgroup / "cgroup.controllers").exists():
        hierarchies = [cgroup]                                   # cgroup v2: one tree
    else:
        hierarchies = [cgroup / name for name in ("cpuset", "memory", "pids")
                       if (cgroup / name).is_dir()]              # v1: runc writes each
    if not hierarchies:
        return f"no cgroup file system at {cgroup} for podman's containers; {ON_A_HOST}"
    for hierarchy in hierarchies:
        probe = hierarchy / f"vfs-notifier-probe-{os.getpid()}"
        try:
            probe.mkdir()
        except OSError as err:
            return (f"podman's runtime cannot make a cgroup ({hierarchy}: {err.strerror}); "
                    f"{ON_A_HOST}")
        try:
            probe.rmdir()
        except OSError:
            pass
    return None


@functools.lru_cache(maxsize=None)
def can_mount_tmpfs() -> Optional[str]:
    """Whether a small tmpfs can be mounted (a full disk, a silent file system stand-in):
    one is mounted on a temporary directory and unmounted again."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root; as root: ./scripts/test"
    import tempfile
    with tempfile.TemporaryDirectory(prefix="vfs-notifier-probe-") as target:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", target],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            said = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            return f"cannot mount a tmpfs here ({said}): the container lacks CAP_SYS_ADMIN; {ON_A_HOST}"
        subprocess.run(["umount", target], capture_output=True)
    return None


@functools.lru_cache(maxsize=None)
def can_limit_watches_in_user_namespace() -> Optional[str]:
    """Whether a user namespace can be made and its own inotify watch limit set
    (/proc/sys/user/max_inotify_watches, per namespace): the current value is written back from
    inside one. It needs no root on a host, but /proc/sys is read-only in a container."""
    if not shutil.which("unshare"):
        return "unshare is missing (Debian package util-linux)"
    write_back = ("p='/proc/sys/user/max_inotify_watches'; "
                  "v=$(cat \"$p\") && echo \"$v\" > \"$p\"")
    try:
        proc = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c", write_back],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "unshare --user did not finish within 30 s"
    if proc.returncode != 0:
        said = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        if "unshare" in said:
            return f"no user namespace here ({said})"
        return (f"cannot set user.max_inotify_watches in a user namespace ({said}): /proc/sys is "
                f"read-only in this container; {ON_A_HOST}")
    return None


def has_free_space(path: Path, megabytes: int) -> Optional[str]:
    """Whether the file system holding `path` has `megabytes` MB free (asked each time: it
    changes as the run goes). /tmp may be a small tmpfs (systemd-nspawn's, Debian 13's)."""
    try:
        info = os.statvfs(path)
    except OSError as err:
        return f"cannot tell the free space at {path}: {err.strerror}"
    free = info.f_bavail * info.f_frsize // (1024 * 1024)
    if free < megabytes:
        return (f"needs {megabytes} MB free at {path}, has {free} MB; give /tmp more room "
                f"(or TMPDIR=/var/tmp ./scripts/test)")
    return None


def as_root(what: str) -> Optional[str]:
    """Whether this run is root, for steps that need it in any case (running the service as
    another user, chattr +i, a local sshd): None as root, else why `what` is skipped."""
    if os.geteuid() != 0:
        return f"{what} needs root; as root: ./scripts/test"
    return None


@functools.lru_cache(maxsize=None)
def can_trace() -> Optional[str]:
    """Whether strace can follow a program here (with the seccomp filter the tests use): a
    container's seccomp profile or Yama's ptrace_scope may refuse ptrace even to root."""
    if not shutil.which("strace"):
        return "strace is not installed (Debian package strace; scripts/test installs it)"
    try:
        proc = subprocess.run(["strace", "-f", "-qq", "--seccomp-bpf", "-o", "/dev/null",
                               "-e", "trace=sendto", "true"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "strace did not finish tracing `true` within 30 s"
    if proc.returncode != 0:
        said = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return f"strace cannot trace here ({said}): ptrace is refused; {ON_A_HOST}"
    return None
