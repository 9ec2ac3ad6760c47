"""The command line's promises: exit codes, one-line errors, check-config, init-db, scan."""

from __future__ import annotations

import pytest

from tests.conftest import write_file
from tests.support.daemon import run_cli


def test_version():
    result = run_cli("--version", env={})
    assert result.returncode == 0 and result.stdout.strip() == "vfs-notifier 1.0.0"


def test_missing_required_setting_exits_78_with_one_line(tree):
    env = {k: v for k, v in tree.env.items() if k != "NGINX_BASE_URL"}
    for command in ("run", "scan", "check-config", "init-db"):
        result = run_cli(command, env=env)
        assert result.returncode == 78, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "urls.base_url (NGINX_BASE_URL): required" in lines[0]


@pytest.mark.parametrize("variable, named", [
    ("CLIENT_VIDEO_DIR", "roots[0].path (CLIENT_VIDEO_DIR)"),
    ("BASE_PATH", "urls.base_path (BASE_PATH)"),
    ("NGINX_BASE_URL", "urls.base_url (NGINX_BASE_URL)"),
    ("MYSQL_USER", "database.user (MYSQL_USER)"),
    ("MYSQL_DB_NAME", "database.name (MYSQL_DB_NAME)"),
])
def test_each_required_setting_missing_exits_78_naming_key_and_variable(tree, variable, named):
    env = {**tree.env, "MYSQL_HOST": "127.0.0.1", "MYSQL_USER": "u", "MYSQL_DB_NAME": "d"}
    del env[variable]
    result = run_cli("run", env=env)
    assert result.returncode == 78
    assert result.stderr.startswith(f"vfs-notifier: {named}: required") and result.stderr.count("\n") == 1


def test_bad_port_message_is_exact(tree):
    result = run_cli("run", env={**tree.env, "MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": "abc",
                                 "MYSQL_USER": "u", "MYSQL_DB_NAME": "d"})
    assert result.returncode == 78
    assert result.stderr.strip() == "vfs-notifier: MYSQL_PORT: not a number ('abc') (from environment)"


def test_explicit_config_file_must_exist(tree):
    result = run_cli("check-config", "--config", str(tree.work / "nope.toml"), env=tree.env)
    assert result.returncode == 78 and "nope.toml: no such file" in result.stderr


def test_invalid_toml_is_a_config_error(tree):
    bad = tree.work / "bad.toml"
    bad.write_text("[database\nport = 1\n")
    result = run_cli("check-config", "--config", str(bad), env=tree.env)
    assert result.returncode == 78 and "not valid TOML" in result.stderr


def test_check_config_shows_sources_and_masks_the_password(tree, mysql_env):
    config = tree.work / "c.toml"
    config.write_text('[service]\nrescan_interval = 60\n')
    result = run_cli("check-config", "--config", str(config), env={**tree.env, **mysql_env})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert mysql_env["MYSQL_PASS"] not in out + result.stderr
    assert "database.password" in out and "(hidden)" in out
    assert "(environment (MYSQL_PORT))" in out
    assert "service.rescan_interval" in out and f"({config})" in out
    assert "service.poll_interval" in out
    assert f"{tree.root}/example.mp4 -> http://media.test/videos/videos/example.mp4" in out


def test_init_db_creates_the_table_and_is_idempotent(tree, mysql_env, mariadb):
    env = {**tree.env, **mysql_env}
    for _ in range(2):
        result = run_cli("init-db", env=env)
        assert result.returncode == 0, result.stderr
    with mariadb.connect(mysql_env["MYSQL_DB_NAME"]) as conn, conn.cursor() as cur:
        cur.execute("SHOW CREATE TABLE videos")
        ddl = cur.fetchone()[1]
    assert "`des_video_path` varchar(1024) NOT NULL" in ddl
    assert "KEY `idx_des_video_path` (`des_video_path`(255))" in ddl and "utf8mb4_general_ci" in ddl


def test_missing_create_privilege_names_init_db(tree, mysql_env, mariadb):
    name = mysql_env["MYSQL_DB_NAME"]
    with mariadb.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER 'weak'@'%%' IDENTIFIED BY 'w'")
        cur.execute(f"GRANT SELECT, INSERT, DELETE ON `{name}`.* TO 'weak'@'%%'")
    try:
        env = {**tree.env, **mysql_env, "MYSQL_USER": "weak", "MYSQL_PASS": "w"}
        result = run_cli("scan", env=env)
        assert result.returncode == 1
        assert "run `vfs-notifier init-db` as a user who may" in result.stderr
        assert "w'" not in result.stderr.replace("weak", "")
    finally:
        with mariadb.connect() as conn, conn.cursor() as cur:
            cur.execute("DROP USER 'weak'@'%%'")


def test_scan_reports_counts_and_never_doubles(store_tree):
    root = store_tree.root
    files = [write_file(root / "a.mp4", mtime_ago=60), write_file(root / "s" / "B.MOV", mtime_ago=60)]
    write_file(root / "notes.txt", mtime_ago=60)
    write_file(root / ("bad\udcff.mp4"), mtime_ago=60)
    first = run_cli("scan", env=store_tree.env)
    assert first.returncode == 0, first.stderr
    assert "found 3, newly registered 2, already registered 0, skipped 1" in first.stdout
    assert "bad\\xff.mp4" in first.stderr
    second = run_cli("scan", env=store_tree.env)
    assert "found 3, newly registered 0, already registered 2, skipped 1" in second.stdout
    assert sorted(store_tree.table.paths()) == sorted(str(f) for f in files)


def test_scan_with_database_down_exits_1(tree, mysql_env):
    env = {**tree.env, **mysql_env, "MYSQL_PORT": "1"}
    result = run_cli("scan", env=env)
    assert result.returncode == 1 and "database unavailable" in result.stderr
