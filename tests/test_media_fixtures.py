"""The committed video fixtures (tests/media/) and the build-time tests that read them.

The package runs some tests at build time (PURE_TESTS in packaging/debian/rules), where only
Build-Depends is installed: no ffmpeg. Those tests read committed containers; a test that
starts calling ffmpeg for a fixture would break every clean build, and this suite, which
always has ffmpeg, would not notice without the first test here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.media import FILES, MEDIA
from vfs_notifier import framing

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "packaging" / "debian" / "rules"
DEP8_MEDIA = REPO / "packaging" / "debian" / "tests" / "media"
NOT_ON_A_BUILDD = {"ffmpeg", "ffprobe", "ffplay"}


def build_time_tests() -> list[str]:
    """The test modules debian/rules runs at build time (its PURE_TESTS wildcard)."""
    text = RULES.read_text().replace("\\\n", " ")
    match = re.search(r"^PURE_TESTS\s*=\s*\$\(wildcard ([^)]*)\)", text, re.M)
    assert match, f"no PURE_TESTS = $(wildcard ...) in {RULES}"
    # $(wildcard ...): each pattern's files that exist, as make lists them.
    return sorted({str(path.relative_to(REPO)) for pattern in match.group(1).split()
                   for path in REPO.glob(pattern)})


def path_without_ffmpeg(directory: Path) -> str:
    """A PATH with every command this machine has except ffmpeg's, as a buildd has them."""
    for bindir in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        for entry in os.scandir(bindir) if os.path.isdir(bindir) else ():
            link = directory / entry.name
            if entry.name not in NOT_ON_A_BUILDD and not link.exists() and not link.is_symlink():
                link.symlink_to(entry.path)
    return str(directory)


@pytest.mark.slow
def test_build_time_tests_pass_without_ffmpeg(tmp_path: Path) -> None:
    modules = build_time_tests()
    assert {"tests/test_framing.py", "tests/test_judge.py", "tests/test_settings.py"} <= set(modules), modules
    bindir = tmp_path / "bin"
    bindir.mkdir()
    env = dict(os.environ, PATH=path_without_ffmpeg(bindir), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-ra",
                           *modules], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    # What skips there says why: only the tests that run ffmpeg itself (and, in a user's run,
    # what needs root in any case, as in this suite).
    allowed = ("ffmpeg is not installed",) + (("needs root",) if os.geteuid() != 0 else ())
    skips = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert all(any(reason in line for reason in allowed) for line in skips), skips


def test_every_fixture_is_a_complete_container() -> None:
    for kind, name in FILES.items():
        path = MEDIA / name
        assert 1000 < path.stat().st_size < 16_000, (name, path.stat().st_size)
        fd = os.open(path, os.O_RDONLY)
        try:
            verdict = framing.check(fd, os.fstat(fd).st_size, path.suffix[1:])
        finally:
            os.close(fd)
        expected = None if kind == "streamed-mkv" else True     # no size: cannot be told
        assert verdict.complete is expected, (name, verdict)


def test_dep8_clips_are_the_same_files() -> None:
    for clip in sorted(DEP8_MEDIA.glob("clip.*")):
        assert clip.read_bytes() == (MEDIA / clip.name).read_bytes(), \
            f"{clip} differs from tests/media/{clip.name}: tests/media/regenerate writes both"


def test_regenerate_makes_the_same_kinds_of_files(tmp_path: Path) -> None:
    """The script remakes every fixture (with today's ffmpeg), each judged as the committed one."""
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed: tests/media/regenerate runs it (apt-get install ffmpeg)")
    subprocess.run([str(MEDIA / "regenerate"), str(tmp_path)], check=True, timeout=120)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES.values())
    for name in FILES.values():
        fresh, committed = tmp_path / name, MEDIA / name
        with open(fresh, "rb") as a, open(committed, "rb") as b:
            got = framing.check(a.fileno(), fresh.stat().st_size, fresh.suffix[1:])
            want = framing.check(b.fileno(), committed.stat().st_size, committed.suffix[1:])
        assert got.complete is want.complete, (name, got, want)
