"""scripts/run, the README's first command: it says "watching ...; Ctrl-C stops" only when it
starts the service, not for the commands that print something and exit."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BANNER = "Ctrl-C stops"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what scripts/run needs, so that its ./run directory is made there, not here."""
    for part in ("scripts", "vfs_notifier"):
        shutil.copytree(REPO / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG")
    return {k: os.environ[k] for k in keep if k in os.environ} | {"PYTHONDONTWRITEBYTECODE": "1"}


@pytest.mark.parametrize("args", [["--version"], ["check-config"], ["scan"], ["list"], ["init-db"]])
def test_commands_that_exit_say_no_banner(checkout, args):
    result = subprocess.run([str(checkout / "scripts/run"), *args], env=_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert BANNER not in result.stderr + result.stdout


@pytest.mark.parametrize("args", [[], ["run"]])
def test_the_service_says_what_it_watches_and_how_to_stop_it(checkout, args):
    proc = subprocess.Popen([str(checkout / "scripts/run"), *args], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
        for line in proc.stderr:        # Ctrl-C once it is up: the stop the banner promises
            if "watching 1 directories below" in line:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert first.strip() == (f"watching {checkout}/run/videos; rows go to {checkout}/run/videos.sqlite3; "
                             f"{BANNER}")
    assert proc.returncode == 0
