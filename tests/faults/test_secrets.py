"""The database password never appears in a log line, a STATUS message, check-config's output
or an error message, wherever it comes from; a config file holding one that every user can
read draws a warning."""

from __future__ import annotations

import time

import pytest

from tests.conftest import write_file
from tests.faults.helpers import log_text
from tests.support.daemon import run_cli

SECRET = "Zq9-s3cr3t'\"\\ pw"         # quotes, a backslash and a space: must survive the trip
WRONG = "Wr0ng-Pw-zz"


@pytest.fixture
def secret_env(tree, mariadb):
    if not mariadb.running:
        mariadb.start()
    tree.env.update(mariadb.new_database(password=SECRET))
    yield tree
    if not mariadb.running:
        mariadb.start()


def _clean(*texts: str) -> None:
    for text in texts:
        for needle in (SECRET, WRONG, "Zq9-s3cr3t", "s3cr3t"):
            assert needle not in text, f"{needle!r} leaked: ...{text[max(0, text.find(needle) - 200):][:400]}"


def test_password_never_in_logs_status_or_check_config(secret_env, mariadb, start_service):
    tree = secret_env
    daemon = start_service()
    write_file(tree.root / "a.mp4")
    tree.table.wait_for_paths([tree.root / "a.mp4"])
    mariadb.stop()                                          # outage: errors, retries, status
    write_file(tree.root / "b.mp4")
    daemon.notify.wait_for("database unavailable", timeout=20)
    mariadb.start()
    tree.table.wait_for_paths([tree.root / "a.mp4", tree.root / "b.mp4"], timeout=30)
    status = "\n".join(daemon.notify.collect(0.1))
    assert "Access denied" not in status and "unavailable" in status
    assert daemon.stop() == 0
    checked = run_cli("check-config", env=tree.env)
    assert checked.returncode == 0 and "(hidden)" in checked.stdout
    _clean(log_text(daemon, tree), status, checked.stdout, checked.stderr)
    for command in ("scan", "init-db"):
        result = run_cli(command, env=tree.env)
        assert result.returncode == 0
        _clean(result.stdout, result.stderr)


def test_a_wrong_password_is_not_shown_either(secret_env, start_service):
    tree = secret_env
    daemon = start_service(MYSQL_PASS=WRONG)
    message = daemon.notify.wait_for("database unavailable", timeout=20)
    assert "Access denied" in message
    time.sleep(1.2)
    scan = run_cli("scan", env={**tree.env, "MYSQL_PASS": WRONG})
    assert scan.returncode == 1 and "Access denied" in scan.stderr
    _clean(log_text(daemon, tree), "\n".join(daemon.notify.messages), scan.stdout, scan.stderr)


def test_password_from_file_and_credential_is_used_and_hidden(secret_env, start_service):
    tree = secret_env
    env = {k: v for k, v in tree.env.items() if k != "MYSQL_PASS"}
    secret_file = tree.work / "mysql-password"
    secret_file.write_text(SECRET + "\n")
    for extra in ({"MYSQL_PASS_FILE": str(secret_file)}, {"CREDENTIALS_DIRECTORY": str(tree.work)}):
        checked = run_cli("check-config", env={**env, **extra})
        assert checked.returncode == 0 and "(hidden)" in checked.stdout
        scan = run_cli("scan", env={**env, **extra})
        assert scan.returncode == 0, scan.stderr
        _clean(checked.stdout, checked.stderr, scan.stdout, scan.stderr)


def test_a_bad_password_value_is_not_echoed(tree):
    config = tree.work / "c.toml"
    config.write_text("[database]\npassword = 987654321\n")
    result = run_cli("check-config", env={**tree.env, "VFS_NOTIFIER_CONFIG": str(config)})
    assert result.returncode == 78 and "database.password" in result.stderr
    assert "987654321" not in result.stderr + result.stdout


@pytest.mark.parametrize("mode, warned", [(0o644, True), (0o640, False), (0o600, False)])
def test_a_readable_config_with_a_password_draws_a_warning(secret_env, mode, warned, start_service):
    tree = secret_env
    config = tree.work / "vfs-notifier.toml"
    config.write_text("[database]\npassword = '''" + SECRET + "'''\n")
    config.chmod(mode)
    env = {k: v for k, v in tree.env.items() if k != "MYSQL_PASS"}
    env["VFS_NOTIFIER_CONFIG"] = str(config)
    checked = run_cli("check-config", env=env)
    assert checked.returncode == 0
    assert ("every user can read it" in checked.stdout) is warned
    daemon = start_service(env=env)
    write_file(tree.root / "x.mp4")
    tree.table.wait_for_paths([tree.root / "x.mp4"])            # the file's password works
    assert daemon.stop() == 0
    said = log_text(daemon, tree)
    assert ("every user can read it" in said) is warned
    if warned:
        assert f"chmod o-r {config}" in said
    _clean(said, checked.stdout, checked.stderr)
