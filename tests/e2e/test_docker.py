"""End to end: the Docker deployment, under podman (no Docker engine runs on these machines).

The images are built from the unchanged Dockerfile and docker/nginx/Dockerfile on a
`debian:bookworm-slim` made here from debootstrap (no registry is reachable). The containers
are run as docker-compose.yml says: its volumes, ports and env_file are read from the file and
interpolated with a .env made from docker/env.example, except that the database is the test
MariaDB on the host's 127.0.0.1 instead of the compose file's own. In both registration modes
a file dropped into the mounted CLIENT_VIDEO_DIR must become a row naming its host path (in
place) or its copy's below INTERNAL_VIDEO_FOLDER_PATH (copy), and that URL must be served by
the compose file's nginx.

podman flags are the ones /work/shared/ENVIRONMENT.md found necessary here: runc, cgroupfs,
the host network for builds and for the service (which reaches the host's MariaDB), and ulimits.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator, Mapping

import pytest

from tests.support import capabilities
from tests.support import debian_root  # its cache, mirror and helpers
from tests.support.daemon import run_cli
from tests.support.table import Table
from tests.support.video_files import small_video

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / "docker" / "env.example"

pytestmark = pytest.mark.e2e

PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
LIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
# Overridable, so that two checkouts testing at once on one machine do not swap images.
SERVICE_IMAGE = os.environ.get("VFS_TEST_SERVICE_IMAGE", "localhost/vfs-notifier-test:latest")
NGINX_IMAGE = os.environ.get("VFS_TEST_NGINX_IMAGE", "localhost/vfs-notifier-nginx-test:latest")
RECIPE_LABEL = "org.vfs-notifier.base-recipe"

# What makes the debootstrap tree look like Docker's debian:bookworm-slim: its dpkg and apt
# settings (no documentation, no package caches) and no package lists.
SLIM_FILES = {
    "etc/dpkg/dpkg.cfg.d/docker": (
        "path-exclude /usr/share/doc/*\n"
        "path-include /usr/share/doc/*/copyright\n"
        "path-exclude /usr/share/groff/*\n"
        "path-exclude /usr/share/info/*\n"
        "path-exclude /usr/share/linda/*\n"
        "path-exclude /usr/share/lintian/overrides/*\n"
        "path-exclude /usr/share/locale/*\n"
        "path-exclude /usr/share/man/*\n"),
    "etc/apt/apt.conf.d/docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";\n'),
    "etc/apt/apt.conf.d/docker-no-languages": 'Acquire::Languages "none";\n',
    "etc/apt/apt.conf.d/docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "etc/apt/apt.conf.d/docker-autoremove-suggests": (
        'Apt::AutoRemove::SuggestsImportant "false";\n'),
}
# ...and what the dpkg settings would have kept out, removed from the tree debootstrap made.
SLIM_DROPPED = ("var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb",
                "usr/share/man/*", "usr/share/info/*", "usr/share/locale/*", "usr/share/groff/*",
                "usr/share/lintian/overrides/*")
SLIM_RECIPE_VERSION = 1


# --- podman and the base image ----------------------------------------------------------

def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*PODMAN, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:2])} ... failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _ensure_podman() -> None:
    # Before installing anything: root, and a machine that gives runc its cgroups.
    capabilities.skip_unless(capabilities.can_run_podman())
    if not shutil.which("podman") or not shutil.which("runc"):
        subprocess.run(["bash", "-c", ". scripts/lib.sh && need_debs podman runc uidmap"],
                       cwd=REPO, check=True, timeout=600)
    if not shutil.which("debootstrap"):
        subprocess.run(["bash", "-c", ". scripts/lib.sh && need_debs debootstrap"],
                       cwd=REPO, check=True, timeout=600)


def _slim_recipe() -> str:
    recipe = repr((debian_root.SUITE, debian_root.MIRROR, debian_root.SECURITY_MIRROR,
                   sorted(SLIM_FILES.items()), SLIM_DROPPED, SLIM_RECIPE_VERSION)).encode()
    return hashlib.sha256(recipe).hexdigest()[:12]


def slim_tarball() -> Path:
    """A minbase Debian 12 tree trimmed like debian:bookworm-slim, as a tar; cached.

    Not debian_root.base_tarball(): that tree has systemd and package lists, which would hide
    what the real slim image lacks (the .deb's postinst needs systemd-sysusers, for one)."""
    d = debian_root
    path = d.CACHE_DIR / f"debian-{d.SUITE}-slim-{_slim_recipe()}.tar"
    with d._cache_lock():
        if path.is_file():
            return path
        work = Path(tempfile.mkdtemp(prefix=path.name + ".", dir=d.CACHE_DIR))
        try:
            tree = work / "root"
            d._run(["debootstrap", "--variant=minbase", d.SUITE, str(tree), d.MIRROR],
                   timeout=d.DEBOOTSTRAP_TIMEOUT)
            (tree / "etc/apt/sources.list").write_text(
                f"deb {d.MIRROR} {d.SUITE} main\ndeb {d.MIRROR} {d.SUITE}-updates main\n"
                f"deb {d.SECURITY_MIRROR} {d.SUITE}-security main\n")
            for name, text in SLIM_FILES.items():
                (tree / name).write_text(text)
            dropped = [p for pattern in SLIM_DROPPED for p in tree.glob(pattern)]
            dropped += [p for p in tree.glob("usr/share/doc/*/*") if p.name != "copyright"]
            for p in dropped:  # a doc directory may be a link to another: seen twice
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
            (tree / "etc/machine-id").write_text("")
            d._run(["tar", "--numeric-owner", "-C", str(tree), "-cf", str(work / "tar"),
                    "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
                    "--exclude=./run/*", "."], timeout=300)
            (work / "tar").rename(path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return path


def base_image() -> None:
    """debian:bookworm-slim in podman's store, imported from slim_tarball() unless there."""
    recipe = _slim_recipe()
    have = podman("image", "inspect", "--format", f'{{{{ index .Labels "{RECIPE_LABEL}" }}}}',
                  BASE_IMAGE, check=False)
    if have.returncode == 0 and have.stdout.strip() == recipe:
        return
    podman("import", "--change", f"LABEL {RECIPE_LABEL}={recipe}", "--change", 'CMD ["bash"]',
           str(slim_tarball()), BASE_IMAGE, timeout=300)


# --- the compose file, read the way docker compose reads it -----------------------------

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$."""
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        value = env.get(name)
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return arg if unset else value
        if op in (":?", "?"):
            if unset:
                raise AssertionError(f"compose would refuse: {name}: {arg}")
            return value
        return value or ""
    return _VARIABLE.sub(one, text)


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def compose_service(name: str, env: Mapping[str, str]) -> dict:
    yaml = pytest.importorskip("yaml")  # Debian's python3-yaml; only these tests need it
    spec = yaml.safe_load(COMPOSE.read_text())["services"][name]

    def walk(value):
        if isinstance(value, str):
            return interpolate(value, env)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value
    return walk(spec)


def run_flags(spec: dict) -> list[str]:
    """`podman run` flags for what a compose service says about volumes and confinement."""
    flags = []
    for volume in spec.get("volumes", []):
        assert volume.startswith("/"), f"the test gives host paths for volumes: {volume}"
        flags += ["--volume", volume]
    if spec.get("read_only"):
        flags.append("--read-only")
    flags += [f"--cap-drop={cap}" for cap in spec.get("cap_drop", [])]
    flags += [f"--security-opt={opt}" for opt in spec.get("security_opt", [])]
    return flags


# --- the test ---------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def images() -> dict[str, float]:
    """Build both images from the repository's Dockerfiles; returns seconds per step."""
    _ensure_podman()
    times: dict[str, float] = {}
    replaced: list[str] = []  # images that a new build took the name of

    def step(name: str, action, image: str = "") -> None:
        start, previous = time.monotonic(), _image_id(image)
        action()
        times[name] = round(time.monotonic() - start, 1)
        if previous and previous != _image_id(image):
            replaced.append(previous)

    def build(image: str, dockerfile: str):
        return lambda: podman("build", "--network", "host", *LIMITS, "--layers", "-t", image,
                              "-f", str(REPO / dockerfile), str(REPO), timeout=900)

    def deb() -> None:
        made = subprocess.run(["./scripts/deb"], cwd=REPO, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=600)
        assert made.returncode == 0, made.stderr[-3000:]

    step("base image", base_image, BASE_IMAGE)
    step("scripts/deb", deb)
    step("service image", build(SERVICE_IMAGE, "Dockerfile"), SERVICE_IMAGE)
    step("nginx image", build(NGINX_IMAGE, "docker/nginx/Dockerfile"), NGINX_IMAGE)
    # A new .deb (or base) makes new images each run: drop the ones replaced, children first.
    for image in reversed(replaced):
        podman("rmi", image, check=False)
    return times


def _image_id(image: str) -> str:
    if not image:
        return ""
    found = podman("image", "inspect", "--format", "{{.Id}}", image, check=False)
    return found.stdout.strip() if found.returncode == 0 else ""


@pytest.fixture
def container_names() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        podman("rm", "--force", "--time", "5", name, check=False, timeout=60)


def fetch(url: str, headers: Mapping[str, str] = {}) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _wait(what: str, predicate, timeout: float, diagnose=lambda: "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{diagnose()}")
        time.sleep(0.2)


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """Not pytest's tmp_path (under a 0700 directory): nginx's workers run as www-data, and
    like a real web root this tree is world-readable."""
    top = Path(tempfile.mkdtemp(prefix="vfs-notifier-docker-"))
    top.chmod(0o755)
    yield top
    shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize("mode", ["in-place", "copy"])
def test_compose_deployment_registers_and_serves(images, mysql_env, container_names, host_dir,
                                                 tmp_path, mode):
    base, logs = host_dir / "srv", host_dir / "logs"
    videos, internal = base / "videos", base / "internal"
    for d in (videos, logs, internal):
        d.mkdir(parents=True)
    port = _free_port()

    env = read_env_file(ENV_EXAMPLE)
    env.update(mysql_env)
    # Two distinct directories, as in the earlier service's .env.
    env.update(CLIENT_VIDEO_DIR=str(videos), INTERNAL_VIDEO_FOLDER_PATH=str(internal), BASE_PATH=str(base),
               NGINX_PORT=str(port), NGINX_BASE_URL=f"http://127.0.0.1:{port}/vfs-notifier",
               VFS_NOTIFIER_LOG_HOST_DIR=str(logs), VFS_NOTIFIER_REGISTRATION_MODE=mode)
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))

    service = compose_service("vfs-notifier", env)
    nginx = compose_service("nginx", env)
    assert service["env_file"] == ".env"

    name = f"vfs-notifier-test-{os.getpid()}"
    container_names.append(name)
    start = time.monotonic()
    podman("run", "--detach", "--name", name, "--network", "host", *LIMITS,
           "--env-file", str(env_file), *run_flags(service), SERVICE_IMAGE)
    web = f"vfs-notifier-nginx-test-{os.getpid()}"
    container_names.append(web)
    (published,) = nginx["ports"]
    podman("run", "--detach", "--name", web, *LIMITS, "--publish", f"127.0.0.1:{published}",
           *run_flags(nginx), NGINX_IMAGE)

    def logs_of(container: str) -> str:
        out = podman("logs", container, check=False)
        return out.stdout[-3000:] + out.stderr[-3000:]

    # Whether the file lands before the service watches (its first walk finds it) or after
    # (inotify does), it must become a row.
    clip = videos / "sub dir" / "clip #1 ü.mp4"
    staging = host_dir / "staging"
    made = small_video(staging / "clip.mp4")
    made.chmod(0o644)
    content = made.read_bytes()
    clip.parent.mkdir()
    made.rename(clip)
    registered_as = internal / "sub dir" / clip.name if mode == "copy" else clip
    try:
        (main_dir, path, url, status), = Table(mysql_env).wait_for(
            lambda rows: any(r.path == str(registered_as) for r in rows), timeout=60, what=str(registered_as))
    except AssertionError as err:
        raise AssertionError(f"{err}\n{logs_of(name)}") from None
    registered = time.monotonic() - start
    assert (main_dir, path, status) == (str(videos), str(registered_as), 1)
    folder = "internal" if mode == "copy" else "videos"
    assert url == (f"http://127.0.0.1:{port}/vfs-notifier/{folder}/sub%20dir/"
                   "clip%20%231%20%C3%BC.mp4")
    if mode == "copy":
        assert registered_as.read_bytes() == content
        assert not [p for p in internal.rglob(".vfs-notifier-copy.*")]
    else:
        assert "INTERNAL_VIDEO_FOLDER_PATH is set" in logs_of(name)

    # Served by the compose file's nginx: whole, and a range (seeking).
    _wait("nginx", lambda: fetch(url)[0] == 200, 30, lambda: logs_of(web))
    status, headers, body = fetch(url)
    assert (status, body, headers["Content-Type"]) == (200, content, "video/mp4")
    status, headers, body = fetch(url, {"Range": "bytes=1000-1999"})
    assert (status, body) == (206, content[1000:2000])
    assert fetch(f"http://127.0.0.1:{port}/vfs-notifier/videos/")[0] in (403, 404)

    # Logs: on stderr (podman logs) and in the dated file on the mounted log volume.
    assert str(registered_as) in logs_of(name)
    assert any(str(registered_as) in p.read_text() for p in logs.glob("*_vfs_tusker_notifier_videos.log"))

    # `docker stop` ends it cleanly.
    podman("stop", "--time", "20", name, timeout=60)
    code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    assert code == "0", logs_of(name)
    print(f"\ntimes: {images}; file to row after container start: {registered:.1f} s")


def test_env_example_fits_the_service_the_compose_file_and_the_snippet(tmp_path):
    """What a user must keep consistent by hand, checked on the shipped example (no root)."""
    env = read_env_file(ENV_EXAMPLE)
    (tmp_path / "empty.toml").write_text("")
    checked = run_cli("check-config", env={**env, "VFS_NOTIFIER_CONFIG": str(tmp_path / "empty.toml")})
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # Every variable the compose file reads is in the example, so none silently falls back.
    yaml = pytest.importorskip("yaml")
    values = yaml.safe_dump(yaml.safe_load(COMPOSE.read_text()), width=1 << 30)  # no comments
    used = {m.group("name") for m in _VARIABLE.finditer(values) if m.group("name")}
    assert used <= env.keys(), f"not in docker/env.example: {sorted(used - env.keys())}"

    service, mariadb, nginx = (compose_service(n, env) for n in ("vfs-notifier", "mariadb", "nginx"))
    assert service["depends_on"]["mariadb"]["condition"] == "service_healthy"
    assert env["MYSQL_HOST"] == "mariadb"
    assert (mariadb["environment"]["MARIADB_DATABASE"], mariadb["environment"]["MARIADB_USER"],
            mariadb["environment"]["MARIADB_PASSWORD"]) == (
            env["MYSQL_DB_NAME"], env["MYSQL_USER"], env["MYSQL_PASS"])
    # Both directories at the same path inside as outside: rows name host paths, no mapping.
    assert f"{env['CLIENT_VIDEO_DIR']}:{env['CLIENT_VIDEO_DIR']}:ro" in service["volumes"]
    assert f"{env['INTERNAL_VIDEO_FOLDER_PATH']}:{env['INTERNAL_VIDEO_FOLDER_PATH']}" in service["volumes"]
    assert env["INTERNAL_VIDEO_FOLDER_PATH"] != env["CLIENT_VIDEO_DIR"]
    for mode in ("in-place", "copy"):
        checked = run_cli("check-config", env={**env, "VFS_NOTIFIER_REGISTRATION_MODE": mode,
                                               "VFS_NOTIFIER_CONFIG": str(tmp_path / "empty.toml")})
        assert checked.returncode == 0, checked.stdout + checked.stderr

    # nginx: publishes the port of NGINX_BASE_URL, sees BASE_PATH where NGINX_INTERNAL_PATH says,
    # and that is the snippet's alias; the snippet's prefix is the path of NGINX_BASE_URL.
    url = urllib.parse.urlsplit(env["NGINX_BASE_URL"])
    assert nginx["ports"] == [f"{url.port}:80"]
    assert f"{env['BASE_PATH']}:{env['NGINX_INTERNAL_PATH']}:ro" in nginx["volumes"]
    snippet = (REPO / "etc/nginx/vfs-notifier.conf").read_text()
    assert f"alias {env['NGINX_INTERNAL_PATH']}/;" in snippet
    assert f"location ^~ {url.path}/ {{" in snippet
