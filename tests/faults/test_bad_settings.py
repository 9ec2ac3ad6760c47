"""Every setting wrong in the ways people get it wrong: the service (and every command) exits
78 with exactly one line on stderr that names the setting and where it came from."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.faults.helpers import NOBODY, package_copy
from tests.support.capabilities import as_root, skip_unless
from tests.support.daemon import PYTHON, run_cli

# (variable, value, words the one line must hold besides the variable's name)
ENV_CASES = [
    ("MYSQL_PORT", "abc", "not a number"), ("MYSQL_PORT", "", "not a number"),
    ("MYSQL_PORT", "0", "1-65535"), ("MYSQL_PORT", "70000", "1-65535"), ("MYSQL_PORT", "-1", "1-65535"),
    ("MYSQL_PORT", "3306.5", "not a number"),
    ("FOLDER_POLL_INTERVAL", "abc", "seconds"), ("FOLDER_POLL_INTERVAL", "0", "more than 0"),
    ("FOLDER_POLL_INTERVAL", "-5", "seconds"), ("FOLDER_POLL_INTERVAL", "nan", "seconds"),
    ("FOLDER_POLL_INTERVAL", "inf", "seconds"), ("FOLDER_POLL_INTERVAL", "1e400", "seconds"),
    ("FOLDER_POLL_INTERVAL", "", "seconds"), ("FOLDER_POLL_INTERVAL", "5s", "seconds"),
    ("VFS_NOTIFIER_RESCAN_INTERVAL", "often", "seconds"), ("VFS_NOTIFIER_RESCAN_INTERVAL", "-1", "seconds"),
    ("VFS_NOTIFIER_FORGET_REMOVED", "maybe", "true or false"),
    ("VFS_NOTIFIER_LOG_LEVEL", "verbose", "debug, info"),
    ("VFS_NOTIFIER_EXTENSIONS", ",", "endings"), ("VFS_NOTIFIER_EXTENSIONS", "mp4,,mkv", "endings"),
    ("VFS_NOTIFIER_EXTENSIONS", "mp4,a/b", "endings"),
    ("NGINX_BASE_URL", "", ""), ("NGINX_BASE_URL", "media.test/videos", "http"),
    ("NGINX_BASE_URL", "ftp://media.test/videos", "http"), ("NGINX_BASE_URL", "http://", "http"),
    ("NGINX_BASE_URL", "http://media.test/v?x=1", "query"), ("NGINX_BASE_URL", "http://media.test/v#top", "query"),
    ("NGINX_BASE_URL", "   ", "empty"),
    ("BASE_PATH", "", ""), ("BASE_PATH", "srv/videos", "absolute"),
    ("CLIENT_VIDEO_DIR", "", ""), ("CLIENT_VIDEO_DIR", "videos", "absolute"),
    ("CLIENT_VIDEO_DIR", "/elsewhere/videos", "BASE_PATH"),
    ("LOG_BASE_DIRECTORY", "logs", "absolute"), ("VFS_NOTIFIER_SQLITE_PATH", "videos.db", "absolute"),
    ("MYSQL_SOCKET", "mysqld.sock", "absolute"), ("MYSQL_PASS_FILE", "password.txt", "absolute"),
    ("MYSQL_PASS_FILE", "/nonexistent/password", "No such file"),
    ("INTERNAL_VIDEO_FOLDER_PATH", "videos", "absolute"),
    ("VFS_NOTIFIER_REGISTRATION_MODE", "move", "in-place, copy"),
    ("STORAGE_PC_BASE_URL", "storage.test/v", "http"),
]


def _one_line(result, *needles: str) -> str:
    assert result.returncode == 78, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize("variable, value, words", ENV_CASES,
                         ids=[f"{v}={x!r}" for v, x, _ in ENV_CASES])
def test_a_bad_environment_variable(tree, variable, value, words):
    env = {**tree.env, variable: value}
    if variable == "STORAGE_PC_BASE_URL":
        env["STORAGE_PC_VIDEO_DIR"] = str(tree.base / "storage")
    line = _one_line(run_cli("run", env=env, timeout=15), variable, words)
    assert "environment" in line or "required" in line


def test_a_second_root_outside_base_path_or_watched_twice(tree):
    for value, words in [("/elsewhere/storage", "BASE_PATH"), (str(tree.root), "twice"),
                         (str(tree.root / "inside"), "inside another watched root"),
                         (str(tree.base) + "2/storage", "BASE_PATH")]:
        _one_line(run_cli("run", env={**tree.env, "STORAGE_PC_VIDEO_DIR": value}, timeout=15), words,
                  "STORAGE_PC_VIDEO_DIR", "(from environment")


def test_an_old_env_file_with_the_second_root_left_empty_is_fine(tree):
    """The earlier service's .env carries `STORAGE_PC_VIDEO_DIR=` empty when it is not used."""
    result = run_cli("check-config", env={**tree.env, "STORAGE_PC_VIDEO_DIR": "", "STORAGE_PC_BASE_URL": ""})
    assert result.returncode == 0, result.stderr
    assert "roots[1]" not in result.stdout


def test_a_root_too_long_for_main_dir(tree):
    """main_dir is varchar(512): a longer root could never have a row; refused at start."""
    base = "/srv/" + "b" * 600
    _one_line(run_cli("run", env={**tree.env, "BASE_PATH": base, "CLIENT_VIDEO_DIR": base + "/v"},
                      timeout=15), "CLIENT_VIDEO_DIR", "main_dir", "512", "environment")


def test_a_database_host_without_user_or_name(tree):
    _one_line(run_cli("run", env={**tree.env, "MYSQL_HOST": "127.0.0.1", "MYSQL_DB_NAME": "d"}),
              "MYSQL_USER", "required")
    _one_line(run_cli("run", env={**tree.env, "MYSQL_HOST": "127.0.0.1", "MYSQL_USER": "u"}),
              "MYSQL_DB_NAME", "required")


# (TOML text, words the line must hold; the file's path is its source)
FILE_CASES = [
    ('[database]\nport = "abc"\n', "database.port", "not a number"),
    ("[database]\nport = true\n", "database.port", "not a number"),
    ("[database]\nport = 99999\n", "database.port", "1-65535"),
    ('[service]\npoll_interval = "fast"\n', "service.poll_interval", "seconds"),
    ("[service]\npoll_interval = -1\n", "service.poll_interval", "seconds"),
    ("[service]\nforget_removed = 2\n", "service.forget_removed", "(2)"),
    ("[service]\nextensions = []\n", "service.extensions", "endings"),
    ("[service]\npoll_intervall = 5\n", "service.poll_intervall", "unknown setting"),
    ("[databse]\nhost = 'x'\n", "databse", "unknown section"),
    ('database = "x"\n', "database", "table"),
    ('roots = "x"\n', "roots", "[[roots]]"),
    ('[urls]\nbase_url = 5\n', "urls.base_url", "not a string"),
    ('[urls]\nbase_url = "www.example.com"\n', "urls.base_url", "http"),
    ('[[roots]]\npath = "relative"\n', "roots[0].path", "absolute"),
    ('[[roots]]\npath = "/srv/x"\nurl = "http://x"\n', "roots[0].url", "unknown setting"),
    ("[database\n", "", "not valid TOML"),
    ("\xff\xfe = 1\n", "", "not valid TOML"),
]


@pytest.mark.parametrize("text, key, words", FILE_CASES, ids=[c[1] or c[2] for c in FILE_CASES])
def test_a_bad_config_file(tree, text, key, words):
    config = tree.work / "bad.toml"
    config.write_bytes(text.encode("latin-1") if "\xff" in text else text.encode())
    env = {**tree.env, "VFS_NOTIFIER_CONFIG": str(config)}
    # The environment wins over the file: leave out the variable of the key under test.
    for prefix, variable in [("roots", "CLIENT_VIDEO_DIR"), ("service.poll", "FOLDER_POLL_INTERVAL"),
                             ("urls.base_url", "NGINX_BASE_URL")]:
        if key.startswith(prefix):
            del env[variable]
    _one_line(run_cli("run", env=env, timeout=15), key, words, str(config))


def test_every_command_gives_the_same_one_line(tree):
    env = {**tree.env, "FOLDER_POLL_INTERVAL": "soon"}
    lines = {_one_line(run_cli(command, env=env), "FOLDER_POLL_INTERVAL")
             for command in ("run", "scan", "check-config", "init-db")}
    assert len(lines) == 1


def test_config_path_that_is_a_directory(tree):
    _one_line(run_cli("run", env={**tree.env, "VFS_NOTIFIER_CONFIG": str(tree.work)}),
              str(tree.work), "cannot read")


def test_unreadable_config_and_password_files(tree):
    """A config file or password file the service's user may not read (here: nobody)."""
    skip_unless(as_root("running the service as another user"))
    top = Path(tempfile.mkdtemp(prefix="vfs-settings-"))
    try:
        top.chmod(0o755)
        package = package_copy(top)
        config, secret = top / "vfs-notifier.toml", top / "password"
        config.write_text("")
        secret.write_text("pw\n")
        config.chmod(0o600)
        secret.chmod(0o600)

        def run_as_nobody(env):
            return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                   PYTHON, "-m", "vfs_notifier", "check-config"],
                                  env={"PATH": "/usr/bin:/bin", "PYTHONPATH": package, **env},
                                  capture_output=True, text=True, cwd="/", timeout=60)
        _one_line(run_as_nobody({**tree.env, "VFS_NOTIFIER_CONFIG": str(config)}),
                  str(config), "Permission denied")
        open_config = top / "open.toml"
        open_config.write_text("")
        open_config.chmod(0o644)
        _one_line(run_as_nobody({**tree.env, "VFS_NOTIFIER_CONFIG": str(open_config),
                                 "MYSQL_PASS_FILE": str(secret)}),
                  "MYSQL_PASS_FILE", "Permission denied", "environment")
    finally:
        shutil.rmtree(top, ignore_errors=True)
