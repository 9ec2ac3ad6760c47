"""Debian's own checks of the package, as CI runs them: autopkgtest and piuparts.

Both run through scripts/debian-checks, the command a packager runs by hand
(docs/PACKAGING.md): the DEP-8 tests of packaging/debian/tests (smoke, service, embedded,
upgrade) in a booted Debian 12 under podman, and piuparts' install, remove, purge and upgrade
from the previous release (1.0.0, built from git). They replace the home-made systemd-nspawn
harness: everything it proved is in the DEP-8 tests now.

The DEP-8 tests run in an unprivileged container, what podman and unprivileged LXC users run
the service in; in a privileged one (systemd builds every sandbox feature there, and
`embedded` insists on all of them) the suite runs `embedded` only, to stay within its time:
`scripts/debian-checks autopkgtest-privileged` runs all four (about 150 s more).

Skipped, with one line saying why, without root or when podman cannot run a container here;
anything else that goes wrong fails. Each prints a few lines (the per-test summary and its
time); the full logs are in build/debian-checks/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.capabilities import as_root, can_run_podman, skip_unless

REPO = Path(__file__).resolve().parents[2]
CHECKS = REPO / "scripts" / "debian-checks"
UNIT_FILE = REPO / "systemd" / "vfs-notifier.service"
MAX_EXPOSURE = 1.3          # `systemd-analyze security`, issue 3
SKIPPED = 77                # scripts/debian-checks: cannot run here (its one line says why)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _checks(what: str | tuple[str, ...], deb: Path | None = None,
            timeout: float = 1800) -> subprocess.CompletedProcess:
    env = dict(os.environ, VFS_NOTIFIER_DEB=str(deb)) if deb else None
    args = [what] if isinstance(what, str) else list(what)
    return subprocess.run([str(CHECKS), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def deb() -> Path:
    """The .deb of this checkout, built once for all the checks."""
    skip_unless(as_root("building the .deb for autopkgtest and piuparts"))
    proc = subprocess.run([str(REPO / "scripts" / "deb")], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"scripts/deb failed:\n{proc.stderr[-4000:]}"
    return REPO / proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def podman_testbed() -> None:
    """autopkgtest's testbeds are podman containers: podman must run one here (piuparts
    needs only a chroot, so it runs inside a container too)."""
    # Asked of the machine first, in a second, rather than after a debootstrap and an image
    # build: inside a container podman's runtime cannot make its cgroups.
    skip_unless(can_run_podman())
    probe = _checks("probe", timeout=1800)   # may wait for another run, or debootstrap
    if probe.returncode == SKIPPED:
        pytest.skip(probe.stdout.strip().splitlines()[-1])
    assert probe.returncode == 0, f"scripts/debian-checks probe:\n{probe.stdout}\n{probe.stderr[-3000:]}"


def test_unit_exposure_offline() -> None:
    """The shipped unit file scores at most 1.3, judged without a running systemd."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is missing (Debian package systemd)")
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                           str(UNIT_FILE)], capture_output=True, text=True, timeout=60)
    levels = [line.split(":", 1)[1].split()[0] for line in proc.stdout.splitlines()
              if "Overall exposure level" in line]
    assert levels and float(levels[0]) <= MAX_EXPOSURE, proc.stdout + proc.stderr


@pytest.mark.parametrize("check", [
    ("autopkgtest",), ("autopkgtest-privileged", "--test-name=embedded"), ("piuparts",),
], ids=lambda check: check[0])
def test_debian_check(deb: Path, check: tuple[str, ...], request: pytest.FixtureRequest) -> None:
    if check[0].startswith("autopkgtest"):
        request.getfixturevalue("podman_testbed")
    proc = _checks(check, deb)
    print(proc.stdout)
    assert proc.returncode == 0, f"{check} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
