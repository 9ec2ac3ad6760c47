"""The command line's promises: exit codes, one-line errors, check-config, init-db, scan."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest

from vfs_notifier import __version__

from tests.conftest import write_file
from tests.support.daemon import run_cli


def test_version():
    result = run_cli("--version", env={})
    assert result.returncode == 0 and result.stdout.strip() == f"vfs-notifier {__version__}"


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


def _insert_foreign_row(env) -> None:
    """A row another program wrote, with every nullable column NULL (the table allows it)."""
    sql = "INSERT INTO videos (main_dir, des_video_path, status, des_url) VALUES (NULL, '/elsewhere/x.mp4', NULL, NULL)"
    if env.get("MYSQL_HOST"):
        import pymysql
        with pymysql.connect(host=env["MYSQL_HOST"], port=int(env["MYSQL_PORT"]), user=env["MYSQL_USER"],
                             password=env["MYSQL_PASS"], database=env["MYSQL_DB_NAME"]) as conn:
            with conn.cursor() as cur:
                cur.execute(sql)
            conn.commit()
    else:
        import sqlite3
        with sqlite3.connect(env["VFS_NOTIFIER_SQLITE_PATH"]) as conn:
            conn.execute(sql)


def _register(env, root, names) -> None:
    """Rows as the registrar writes them, through the store's own insert."""
    import os

    from vfs_notifier import settings as settings_module
    from vfs_notifier.store import NewVideo, Version
    from vfs_notifier.store_factory import open_store

    store = open_store(settings_module.load(None, env).database)
    store.open()
    try:
        videos = []
        for name in names:
            path = write_file(root / name, mtime_ago=60)
            st = os.stat(path)
            url = "http://media.test/videos/videos/" + quote(name)
            videos.append(NewVideo(str(root), str(path), url,
                                   Version(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)))
        store.insert(videos, {})
    finally:
        store.close()


def test_list_prints_the_rows_as_a_table_and_as_json(store_tree):
    root = store_tree.root
    _register(store_tree.env, root, ["a.mp4", "My Show #1/ep 1.mkv", "odd\nname.mov"])
    _insert_foreign_row(store_tree.env)
    rows = store_tree.table.rows()
    assert len(rows) == 4

    as_json = run_cli("list", "--json", env=store_tree.env)
    assert as_json.returncode == 0, as_json.stderr
    listed = json.loads(as_json.stdout)
    assert [set(item) for item in listed] == [{"id", "status", "created", "path", "url", "main_dir"}] * 4
    assert [item["path"] for item in listed] == [row.path for row in rows]        # by id
    assert [item["url"] for item in listed] == [row.url for row in rows]
    ids = [item["id"] for item in listed]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", item["created"]) for item in listed)
    assert listed[-1] == {"id": ids[-1], "status": None, "created": listed[-1]["created"],
                          "path": "/elsewhere/x.mp4", "url": None, "main_dir": None}
    assert {item["main_dir"] for item in listed[:3]} == {str(root)}

    table = run_cli("list", env=store_tree.env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["id", "status", "created", "path", "url"]
    assert len(lines) == 5                       # the newline in a name is escaped, not printed
    for line, item in zip(lines[1:], listed):
        path = item["path"].replace("\n", "\\n")
        assert line.startswith(str(item["id"])) and path in line
        assert line.endswith(item["url"] or "NULL")
    url_column = lines[0].index("url")
    assert all(line[url_column:].strip() in {i["url"] or "NULL" for i in listed} for line in lines[1:])


def test_list_on_a_fresh_machine_creates_nothing(tree):
    database = tree.work / "videos.sqlite3"
    result = run_cli("list", "--json", env=tree.env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert "does not exist yet" in result.stderr
    assert not database.exists() and not (tree.work / "log").exists()
    table = run_cli("list", env=tree.env)
    assert table.returncode == 0 and table.stdout.split() == ["id", "status", "created", "path", "url"]


def test_list_with_database_down_exits_1(tree, mysql_env):
    result = run_cli("list", env={**tree.env, **mysql_env, "MYSQL_PORT": "1"})
    assert result.returncode == 1 and "database unavailable" in result.stderr
    assert mysql_env["MYSQL_PASS"] not in result.stderr


def _check_config_lines(env) -> dict[str, tuple[str, str]]:
    result = run_cli("check-config", env=env)
    assert result.returncode == 0, result.stderr
    shown = {}
    for line in result.stdout.splitlines():
        match = re.fullmatch(r"(\S+)\s+= (.*?)    \((.*)\)", line)
        if match:
            shown[match.group(1)] = (match.group(2), match.group(3))
    return shown


def test_check_config_shows_every_setting_set_or_not(tree):
    """Nothing set but the three required variables: every other setting is printed, an unset
    one as (unset), each with where its value or default comes from."""
    shown = _check_config_lines(tree.env)
    from vfs_notifier.settings import _SPECS
    settings = {spec.key for spec in _SPECS} | {"roots[0].path", "roots[0].base_url", "roots[0].base_path"}
    assert set(shown) == settings
    for key in ("database.host", "database.user", "database.name", "database.socket",
                "database.password", "database.password_file", "urls.nginx_root",
                "registration.copy_to"):
        value, source = shown[key]
        assert value == "(unset)" and source.startswith("default: "), (key, shown[key])
    assert shown["database.host"][1] == "default: no server: the embedded SQLite store"
    assert shown["roots[0].base_url"] == ("http://media.test/videos", "default: urls.base_url")
    assert shown["roots[0].base_path"] == (tree.env["BASE_PATH"], "default: urls.base_path")
    assert shown["database.port"] == ("3306", "default")
    assert shown["logging.level"] == ("info", "default")


def test_check_config_names_systemds_directories_as_the_defaults(tree):
    env = {k: v for k, v in tree.env.items() if k not in ("VFS_NOTIFIER_SQLITE_PATH", "LOG_BASE_DIRECTORY")}
    plain = _check_config_lines(env)
    assert plain["database.sqlite_path"] == ("/var/lib/vfs-notifier/videos.sqlite3",
                                             "default, as $STATE_DIRECTORY is unset")
    assert plain["logging.directory"] == ("/var/log/vfs-notifier", "default, as $LOGS_DIRECTORY is unset")
    state, logs = tree.work / "state", tree.work / "logs"
    under_systemd = _check_config_lines({**env, "STATE_DIRECTORY": str(state), "LOGS_DIRECTORY": str(logs)})
    assert under_systemd["database.sqlite_path"] == (f"{state}/videos.sqlite3",
                                                     "default: $STATE_DIRECTORY, which systemd set")
    assert under_systemd["logging.directory"] == (str(logs), "default: $LOGS_DIRECTORY, which systemd set")


def test_check_config_with_everything_set_shows_no_unset(tree, mysql_env):
    config = tree.work / "full.toml"
    config.write_text(f'[database]\nsocket = "/run/mysqld/mysqld.sock"\npassword_file = "{tree.work}/pw"\n'
                      f'nodes = ["db2.example:3307", "db3.example"]\n'
                      f'[urls]\nnginx_root = "/srv/nginx"\n'
                      f'[registration]\nmode = "copy"\ncopy_to = "{tree.base}/copies"\n'
                      f'[[roots]]\npath = "{tree.root}"\n')
    (tree.work / "pw").write_text("secret-from-file\n")
    env = {**tree.env, **mysql_env, "VFS_NOTIFIER_CONFIG": str(config)}
    del env["CLIENT_VIDEO_DIR"], env["MYSQL_PASS"]
    shown = _check_config_lines(env)
    assert [key for key, (value, _) in shown.items() if value == "(unset)"] == []
    assert shown["registration.copy_to"] == (f"{tree.base}/copies", str(config))
    assert shown["urls.nginx_root"] == ("/srv/nginx", str(config))
    assert shown["database.password"] == ("(hidden)", f"file {tree.work}/pw")
    assert shown["database.host"] == (mysql_env["MYSQL_HOST"], "environment (MYSQL_HOST)")
