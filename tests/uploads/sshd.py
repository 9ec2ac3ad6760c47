"""A private sshd on a loopback port, for scp, sftp and rsync over ssh.

It runs as root with its own configuration, host key and authorized key (all made in the
test's directory), so it never reads or changes the machine's /etc/ssh. sftp is served by
`internal-sftp`. Clients get `-F /dev/null` so that no ssh_config on the machine changes
what they do.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

from tests.support.capabilities import as_root
from tests.support.servers import ServerFailed, last_lines


def sshd_binary() -> Optional[str]:
    return shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd",) if os.access(p, os.X_OK)), None)


def missing_tools() -> Optional[str]:
    """Why a local sshd cannot run here, or None."""
    not_root = as_root("a local sshd for scp/sftp (it logs in as the user running it)")
    if not_root:
        return not_root
    if not sshd_binary():
        return "sshd not installed (Debian package openssh-server)"
    for tool in ("ssh", "ssh-keygen", "scp", "sftp"):
        if not shutil.which(tool):
            return f"{tool} not installed (Debian package openssh-client)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sshd:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self.key = directory / "client_key"
        self.proc: Optional[subprocess.Popen] = None
        self.log = directory / "sshd.log"

    def start(self, timeout: float = 20) -> "Sshd":
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        # sshd refuses to start without its privilege-separation directory.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        for key in (d / "host_key", self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True,
                           capture_output=True)
        shutil.copyfile(f"{self.key}.pub", d / "authorized_keys")
        for attempt in range(5):   # the free port may be taken between asking and binding
            self.port = _free_port()
            (d / "sshd_config").write_text(
                f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
                f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
                "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                "Subsystem sftp internal-sftp\nLogLevel ERROR\nMaxStartups 30\n")
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen([sshd_binary(), "-D", "-e", "-f", str(d / "sshd_config")],
                                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            if self._wait_usable(timeout):
                return self
            self.stop()
        raise ServerFailed(f"local sshd did not start (port {self.port})", last_lines(self.log))

    def _wait_usable(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            result = subprocess.run([*self.ssh_command(), "true"], capture_output=True, timeout=15)
            if result.returncode == 0:
                return True
            time.sleep(0.2)
        return False

    @property
    def options(self) -> list[str]:
        return ["-F", "/dev/null", "-i", str(self.key), "-o", "IdentitiesOnly=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]

    @property
    def target(self) -> str:
        return "root@127.0.0.1"

    def ssh_command(self) -> list[str]:
        return ["ssh", *self.options, "-p", str(self.port), self.target]

    def scp_command(self, *extra: str) -> list[str]:
        return ["scp", *self.options, "-P", str(self.port), *extra]

    def sftp_command(self, batch: Path, *extra: str) -> list[str]:
        return ["sftp", *self.options, "-P", str(self.port), "-b", str(batch), *extra, self.target]

    def rsync_shell(self) -> str:
        """The `-e` argument that makes rsync go through this sshd."""
        return " ".join(["ssh", *self.options, "-p", str(self.port)])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
