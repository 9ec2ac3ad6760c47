"""End to end: the shipped nginx snippet serves every URL the service registers.

A real nginx (Debian's, /usr/sbin/nginx) listens on a free loopback port with
etc/nginx/vfs-notifier.conf included in its server block, its `alias` rendered for a temporary
base path; the real service (`python3 -m vfs_notifier run`) registers files with awkward names
under a watched root there, and each des_url it wrote is fetched: the exact bytes, a byte range,
the content type. Directory URLs, other files and symlinks leading out of the tree must not be
served. Also here: `check-config` refuses a watched root that has no URL.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

import pytest

from tests.support.capabilities import as_root, skip_unless
from tests.support.daemon import Daemon, run_cli
from tests.support.media import container_of, tagged_video
from tests.support.servers import ServerFailed, last_lines
from tests.support.table import Table
from vfs_notifier.rows import url_for  # the URL rule the service registers by

REPO = Path(__file__).resolve().parents[2]
SNIPPET = REPO / "etc" / "nginx" / "vfs-notifier.conf"
NGINX = "/usr/sbin/nginx"
PREFIX = "/vfs-notifier"            # the snippet's location, the path of the default base_url
DEFAULT_ALIAS = "alias /srv/vfs-notifier/;"
EX_CONFIG = 78

pytestmark = pytest.mark.e2e

# name below the watched root -> content; each name is one of the ways a URL can go wrong.
AWKWARD = {
    "plain.mp4": b"plain",
    "with space.mp4": b"space",
    "hash#tag.mp4": b"hash",
    "100% done.avi": b"percent",
    "%41 stays %41.mkv": b"no double decoding",
    "why?.mov": b"question",
    "semi;colon+plus&amp'quote.MP4": b"punctuation, upper-case extension",
    "Grüße façade.mov": b"latin-1 range",
    "日本語のビデオ.mkv": b"cjk",
    "emoji 🎬🍿.mp4": b"astral plane",
    "sub dir/ß#?%/deep name.Mkv": b"awkward directories too",
}
CONTENT_TYPES = {"mp4": "video/mp4", "avi": "video/x-msvideo", "mov": "video/quicktime",
                 "mkv": "video/x-matroska"}


def _payload(tag: bytes, name: str) -> bytes:
    # A real container of the name's kind (the service registers only finished videos), a few
    # KB: long enough that a range in the middle is a real slice; the tag makes it distinct.
    return tagged_video(container_of(name) or "mp4", tag)


def render_snippet(alias_dir: Path) -> str:
    """The shipped snippet with its alias pointed at `alias_dir`, as an operator adapts it."""
    text = SNIPPET.read_text()
    assert text.count(DEFAULT_ALIAS) == 1, f"{SNIPPET} no longer has the line {DEFAULT_ALIAS!r}"
    assert f"location ^~ {PREFIX}/ " in text
    return text.replace(DEFAULT_ALIAS, f"alias {alias_dir}/;")


def _ensure_nginx() -> None:
    if os.access(NGINX, os.X_OK):
        return
    skip_unless(as_root("installing Debian's nginx-light (not installed here)"))
    subprocess.run(["bash", "-c", ". scripts/lib.sh && need_debs nginx-light"], cwd=REPO,
                   check=True, timeout=600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """One nginx master in the foreground, everything it writes under `prefix`."""

    def __init__(self, prefix: Path, snippet: Path) -> None:
        self.prefix, self.snippet = prefix, snippet
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        for _ in range(5):  # another process may take the free port before nginx binds it
            self.port = _free_port()
            conf = self.prefix / "nginx.conf"
            conf.write_text(self._conf())
            self.proc = subprocess.Popen(
                [NGINX, "-p", str(self.prefix), "-c", str(conf), "-e", str(self.prefix / "error.log"),
                 "-g", f"daemon off; pid {self.prefix}/nginx.pid;"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", self.port)) == 0:
                        return
                time.sleep(0.05)
            self.stop()
            if "Address already in use" not in self.error_log():
                break
        raise ServerFailed(f"nginx did not start on port {self.port}", last_lines(self.prefix / "error.log"))

    def _conf(self) -> str:
        temp = self.prefix / "temp"
        temp.mkdir(exist_ok=True)
        temps = "".join(f"    {kind}_temp_path {temp}/{kind};\n"
                        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        # The http block mirrors Debian's /etc/nginx/nginx.conf where it matters here.
        return (f"worker_processes 1;\n"
                f"events {{ worker_connections 64; }}\n"
                f"http {{\n"
                f"    include /etc/nginx/mime.types;\n"
                f"    default_type application/octet-stream;\n"
                f"    sendfile on;\n"
                f"    access_log {self.prefix}/access.log;\n"
                f"{temps}"
                f"    server {{\n"
                f"        listen 127.0.0.1:{self.port};\n"
                f"        include {self.snippet};\n"
                f"    }}\n"
                f"}}\n")

    def error_log(self) -> str:
        try:
            return (self.prefix / "error.log").read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}"


class Site:
    """A temporary base_path served by nginx, with a watched root `videos` below it."""

    def __init__(self, top: Path, nginx: Nginx) -> None:
        self.top = top
        self.base = top / "srv"
        self.root = self.base / "videos"
        self.outside = top / "outside"
        self.nginx = nginx

    def url(self, path: Path) -> str:
        return url_for(str(path), str(self.base), self.nginx.base_url)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    _ensure_nginx()
    # Not pytest's tmp_path: that lies under a 0700 directory, and nginx's workers run as
    # nobody when the master is root; like a real web root, this tree is world-readable.
    top = Path(tempfile.mkdtemp(prefix="vfs-notifier-nginx-"))
    top.chmod(0o755)
    nginx = Nginx(top / "nginx", top / "nginx" / "vfs-notifier.conf")
    s = Site(top, nginx)
    for d in (s.root, s.outside, nginx.prefix):
        d.mkdir(parents=True)
    # nginx reaches base_path through a symlink, as it does when base_path is mounted or linked
    # elsewhere (nginx_root): the snippet refuses symlinks only below its alias.
    (top / "nginx-view").symlink_to(s.base)
    nginx.snippet.write_text(render_snippet(top / "nginx-view"))
    nginx.start()
    try:
        yield s
    finally:
        nginx.stop()
        shutil.rmtree(top, ignore_errors=True)


def fetch(url: str, headers: Optional[dict] = None) -> tuple[int, dict, bytes]:
    """(status, headers, body) of a GET, without raising on 4xx/5xx."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def assert_served(url: str, content: bytes, extension: str) -> None:
    status, headers, body = fetch(url)
    assert status == 200, f"GET {url} -> {status}"
    assert body == content, f"GET {url}: wrong bytes"
    assert headers["Content-Type"] == CONTENT_TYPES[extension.lower()], url
    assert headers.get("Accept-Ranges") == "bytes", url
    # Seeking: a range in the middle, and an open-ended one from the end.
    status, headers, body = fetch(url, {"Range": "bytes=100-1123"})
    assert status == 206, f"GET {url} with Range -> {status}"
    assert body == content[100:1124]
    assert headers["Content-Range"] == f"bytes 100-1123/{len(content)}"
    status, _, body = fetch(url, {"Range": "bytes=-10"})
    assert (status, body) == (206, content[-10:])


def assert_not_served(url: str) -> None:
    status, _, body = fetch(url)
    assert status in (403, 404), f"GET {url} -> {status}: {body[:200]!r}"


# --- the snippet alone, with files made by hand and the service's own URL rule ------------

def test_snippet_serves_hand_made_files_at_the_service_urls(site: Site) -> None:
    made = site.base / "by-hand"
    for name, tag in AWKWARD.items():
        path = made / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_payload(tag, name))
    for name, tag in AWKWARD.items():
        assert_served(site.url(made / name), _payload(tag, name), name.rsplit(".", 1)[1])


def test_no_directory_listing(site: Site) -> None:
    (site.root / "listed?").mkdir(exist_ok=True)
    (site.root / "listed?" / "a.mp4").write_bytes(b"a")
    for url in (site.nginx.base_url + "/", site.nginx.base_url, site.url(site.root) + "/",
                site.url(site.root), site.url(site.root / "listed?") + "/"):
        assert_not_served(url)


def test_only_video_files_are_served(site: Site) -> None:
    for name in ("notes.txt", "video.mp4.part", ".htpasswd", "video.mp4~", "mp4"):
        path = site.root / "others" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"not for the web")
        assert_not_served(site.url(path))
    # A directory whose name looks like a video is still a directory.
    (site.root / "folder.mp4").mkdir(exist_ok=True)
    status, _, _ = fetch(site.url(site.root / "folder.mp4") + "/")
    assert status in (403, 404)


def test_symlinks_do_not_lead_out_of_the_tree(site: Site) -> None:
    secret = site.outside / "secret.mp4"
    secret.write_bytes(b"outside base_path")
    links = site.root / "links"
    links.mkdir(exist_ok=True)
    (links / "escape.mp4").symlink_to(secret)
    (links / "escape-dir").symlink_to(site.outside, target_is_directory=True)
    (links / "relative.mp4").symlink_to("../../../outside/secret.mp4")
    assert fetch(site.url(links / "escape.mp4"))[0] in (403, 404)
    assert fetch(site.url(links / "escape-dir" / "secret.mp4"))[0] in (403, 404)
    assert fetch(site.url(links / "relative.mp4"))[0] in (403, 404)
    # And the URL cannot climb out by itself either.
    for url in (f"{site.nginx.base_url}/../outside/secret.mp4",
                f"{site.nginx.base_url}/videos/..%2F..%2Foutside%2Fsecret.mp4",
                f"{site.nginx.base_url}/%2e%2e/outside/secret.mp4",
                f"{site.nginx.base_url}../outside/secret.mp4"):  # the alias off-by-slash
        status, _, body = fetch(url)
        assert b"outside base_path" not in body, url


# --- the real service registers the files; nginx serves what it registered ----------------

@pytest.fixture(params=["sqlite", "mysql"])
def service_env(request: pytest.FixtureRequest, site: Site, tmp_path: Path) -> dict[str, str]:
    """The service's environment for a fresh watched root below the site's base path."""
    root = site.base / f"registered-{request.param}"
    root.mkdir()
    (tmp_path / "empty.toml").write_text("")
    env = {"VFS_NOTIFIER_CONFIG": str(tmp_path / "empty.toml"),  # never the machine's config
           "CLIENT_VIDEO_DIR": str(root), "BASE_PATH": str(site.base),
           "NGINX_BASE_URL": site.nginx.base_url, "LOG_BASE_DIRECTORY": str(tmp_path / "log"),
           "VFS_NOTIFIER_SQLITE_PATH": str(tmp_path / "videos.sqlite3")}
    if request.param == "mysql":  # utf8mb4 all the way: the emoji must survive the table
        env.update(request.getfixturevalue("mysql_env"))
    return env


def test_every_registered_url_is_served(site: Site, service_env: dict[str, str],
                                        tmp_path: Path) -> None:
    root = Path(service_env["CLIENT_VIDEO_DIR"])
    expected = {root / name: _payload(tag, name) for name, tag in AWKWARD.items()}
    names = list(expected)
    # Half the files exist before the service starts (its first walk finds them), half arrive
    # while it runs (inotify does), each renamed into place finished, as uploaders do.
    for path in names[::2]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(expected[path])
    daemon = Daemon(tmp_path, service_env).start()
    try:
        for path in names[1::2]:
            path.parent.mkdir(parents=True, exist_ok=True)
            incoming = path.with_name(".incoming-" + path.name + ".tmp")
            incoming.write_bytes(expected[path])
            incoming.rename(path)
        rows = Table(service_env).wait_for_paths(expected, timeout=30)
    except AssertionError as err:
        raise AssertionError(f"{err}\nservice output:\n{daemon.log()[-4000:]}") from None
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log()[-4000:]
    for row in rows:
        assert row.url.startswith(site.nginx.base_url + "/"), row.url
        path = Path(row.path)
        assert_served(row.url, expected[path], path.suffix[1:])


def test_check_config_refuses_a_root_without_url(tmp_path: Path) -> None:
    base = tmp_path / "srv"
    elsewhere = tmp_path / "elsewhere" / "videos"
    for d in (base / "videos", elsewhere):
        d.mkdir(parents=True)
    (tmp_path / "empty.toml").write_text("")
    env = {"VFS_NOTIFIER_CONFIG": str(tmp_path / "empty.toml"), "BASE_PATH": str(base),
           "NGINX_BASE_URL": "http://127.0.0.1/vfs-notifier",
           "LOG_BASE_DIRECTORY": str(tmp_path / "log"),
           "VFS_NOTIFIER_SQLITE_PATH": str(tmp_path / "videos.sqlite3")}

    good = run_cli("check-config", env={**env, "CLIENT_VIDEO_DIR": str(base / "videos")})
    assert good.returncode == 0, good.stdout + good.stderr

    bad = run_cli("check-config", env={**env, "CLIENT_VIDEO_DIR": str(elsewhere)})
    assert bad.returncode == EX_CONFIG, bad.stdout + bad.stderr
    lines = [line for line in (bad.stdout + bad.stderr).splitlines()
             if str(elsewhere) in line and "BASE_PATH" in line and "CLIENT_VIDEO_DIR" in line]
    assert lines, f"no line names the root, CLIENT_VIDEO_DIR and BASE_PATH:\n{bad.stdout}{bad.stderr}"
