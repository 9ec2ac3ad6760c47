"""settings.resolve: precedence, provenance, and one clear error per wrong setting."""

from __future__ import annotations

import pytest

from vfs_notifier.settings import ConfigError, resolve

BASE_ENV = {"CLIENT_VIDEO_DIR": "/srv/v/videos", "BASE_PATH": "/srv/v", "NGINX_BASE_URL": "http://h/v"}


def settle(data=None, **env):
    return resolve(data or {}, "/etc/vfs-notifier.toml", {**BASE_ENV, **env},
                   read_secret=lambda p: {"/run/pw": "from-file", "/creds/mysql-password": "from-cred"}[p])


def error(data=None, env=None) -> str:
    with pytest.raises(ConfigError) as caught:
        resolve(data or {}, "/etc/vfs-notifier.toml", env if env is not None else BASE_ENV,
                read_secret=lambda p: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    return str(caught.value)


def test_environment_only_gives_embedded_store_and_defaults():
    s = settle()
    assert not s.database.uses_mysql
    assert s.database.port == 3306 and s.poll_interval == 5 and s.rescan_interval == 0
    assert s.roots[0].path == "/srv/v/videos"
    assert s.roots[0].base_url == "http://h/v"
    assert s.extensions == ("mp4", "avi", "mov", "mkv")
    assert s.provenance["database.port"] == ("3306", "default")
    assert s.provenance["roots[0].path"] == ("/srv/v/videos", "environment (CLIENT_VIDEO_DIR)")


def test_environment_overrides_file_and_says_so():
    data = {"database": {"host": "db.example", "port": 3307, "user": "u", "name": "n"},
            "urls": {"base_url": "http://file/x", "base_path": "/srv"}}
    s = settle(data, MYSQL_PORT="3308")
    assert s.database.port == 3308 and s.database.host == "db.example"
    assert s.provenance["database.port"] == ("3308", "environment (MYSQL_PORT)")
    assert s.provenance["database.host"] == ("db.example", "/etc/vfs-notifier.toml")
    assert s.roots[0].base_url == "http://h/v"   # NGINX_BASE_URL beats the file


def test_file_alone_configures_roots_with_their_own_urls():
    data = {"urls": {"base_url": "http://a/", "base_path": "/data"},
            "roots": [{"path": "/data/one"}, {"path": "/data/two", "base_url": "https://b/x"}]}
    s = resolve(data, "f.toml", {})
    assert [r.path for r in s.roots] == ["/data/one", "/data/two"]
    assert [r.base_url for r in s.roots] == ["http://a", "https://b/x"]


def test_storage_pc_variables_make_a_second_root():
    s = settle(STORAGE_PC_VIDEO_DIR="/srv/v/storage", STORAGE_PC_BASE_URL="http://storage/v")
    assert [(r.path, r.base_url) for r in s.roots] == [
        ("/srv/v/videos", "http://h/v"), ("/srv/v/storage", "http://storage/v")]




def test_nginx_serve_directory_is_the_alternative_name():
    assert settle(NGINX_SERVE_DIRECTORY="/usr/share/nginx/v").nginx_root == "/usr/share/nginx/v"
    assert settle(NGINX_INTERNAL_PATH="/a", NGINX_SERVE_DIRECTORY="/b").nginx_root == "/a"


def test_port_not_a_number_names_variable_and_source():
    assert error(env={**BASE_ENV, "MYSQL_PORT": "abc"}) == "MYSQL_PORT: not a number ('abc') (from environment)"


def test_port_from_file_names_key_and_file():
    assert error({"database": {"port": "abc"}}) == \
        "database.port: not a number ('abc') (from /etc/vfs-notifier.toml)"


@pytest.mark.parametrize("missing, named", [
    ("CLIENT_VIDEO_DIR", "roots[0].path (CLIENT_VIDEO_DIR)"),
    ("BASE_PATH", "urls.base_path (BASE_PATH)"),
    ("NGINX_BASE_URL", "urls.base_url (NGINX_BASE_URL)"),
])
def test_each_required_setting_names_toml_key_and_variable(missing, named):
    env = {k: v for k, v in BASE_ENV.items() if k != missing}
    message = error(env=env)
    assert message.startswith(named + ": required"), message


@pytest.mark.parametrize("missing, named", [("MYSQL_USER", "database.user (MYSQL_USER)"),
                                             ("MYSQL_DB_NAME", "database.name (MYSQL_DB_NAME)")])
def test_mysql_needs_user_and_database(missing, named):
    env = {**BASE_ENV, "MYSQL_HOST": "db", "MYSQL_USER": "u", "MYSQL_DB_NAME": "d"}
    del env[missing]
    assert error(env=env).startswith(named + ": required")


@pytest.mark.parametrize("var, value, problem", [
    ("CLIENT_VIDEO_DIR", "videos", "not an absolute path ('videos')"),
    ("CLIENT_VIDEO_DIR", "", "empty"),
    ("BASE_PATH", "srv", "not an absolute path ('srv')"),
    ("NGINX_BASE_URL", "media.example/v", "not a URL starting with http:// or https://"),
    ("NGINX_BASE_URL", "ftp://x/y", "not a URL starting with http:// or https://"),
    ("FOLDER_POLL_INTERVAL", "soon", "not a number of seconds ('soon')"),
    ("FOLDER_POLL_INTERVAL", "0", "must be more than 0 seconds"),
    ("MYSQL_PORT", "70000", "not a port number 1-65535"),
    ("VFS_NOTIFIER_FORGET_REMOVED", "maybe", "not true or false ('maybe')"),
    ("VFS_NOTIFIER_LOG_LEVEL", "loud", "not one of debug, info, warning, error"),
])
def test_wrong_values_are_one_line_naming_the_variable(var, value, problem):
    message = error(env={**BASE_ENV, var: value})
    assert message.startswith(f"{var}: {problem}") and message.endswith("(from environment)")
    assert "\n" not in message


def test_root_outside_base_path_is_an_error_at_start():
    message = error(env={**BASE_ENV, "CLIENT_VIDEO_DIR": "/elsewhere/videos"})
    assert message.startswith("CLIENT_VIDEO_DIR: /elsewhere/videos is not below BASE_PATH /srv/v")


def test_unknown_keys_and_sections_are_errors():
    assert error({"database": {"hots": "x"}}).startswith("database.hots: unknown setting")
    assert error({"datbase": {}}).startswith("datbase: unknown section")


def test_password_sources_in_order_and_never_shown():
    assert settle(MYSQL_PASS="pw1").database.password == "pw1"
    assert settle(MYSQL_PASS_FILE="/run/pw").database.password == "from-file"
    assert settle(CREDENTIALS_DIRECTORY="/creds").database.password == "from-cred"
    s = settle({"database": {"password": "in-file"}}, MYSQL_PASS="pw1")
    assert s.database.password == "pw1"
    assert s.provenance["database.password"][0] == "(hidden)"
    assert "pw1" not in repr(s) and "pw1" not in str(s.provenance)


def test_unreadable_password_file_names_the_file_not_the_secret():
    message = error(env={**BASE_ENV, "MYSQL_PASS_FILE": "/run/secret"})
    assert message == "MYSQL_PASS_FILE: cannot read /run/secret: Permission denied (from environment)"


def test_empty_optional_variable_means_unset():
    s = settle({"database": {"host": "db", "user": "u", "name": "n"}}, MYSQL_HOST="")
    assert s.database.host == "db"


def test_extensions_are_lower_cased_without_dots():
    assert settle(VFS_NOTIFIER_EXTENSIONS=".MP4, webm").extensions == ("mp4", "webm")


def test_nested_roots_are_refused():
    message = error(env={**BASE_ENV, "STORAGE_PC_VIDEO_DIR": "/srv/v/videos/inner"})
    assert "inside another watched root" in message


# --- registration: what "finished" means (judge.py) ----------------------------------------

def test_registration_defaults():
    s = settle()
    assert (s.check_structure, s.ignore, s.settle_seconds) == (True, (), 2.0)
    assert s.provenance["registration.check_structure"] == ("true", "default")
    assert s.provenance["registration.settle_seconds"] == ("2", "default")


def test_registration_from_the_file():
    s = settle({"registration": {"check_structure": False, "ignore": ["*.sample.mp4", "proxies/*"],
                                 "settle_seconds": 5.5}})
    assert (s.check_structure, s.ignore, s.settle_seconds) == (False, ("*.sample.mp4", "proxies/*"), 5.5)
    assert s.provenance["registration.ignore"] == ("*.sample.mp4, proxies/*", "/etc/vfs-notifier.toml")


def test_registration_environment_wins_and_ignore_is_comma_separated():
    data = {"registration": {"check_structure": True, "ignore": ["from-file*"], "settle_seconds": 9}}
    s = settle(data, VFS_NOTIFIER_CHECK_STRUCTURE="off", VFS_NOTIFIER_IGNORE=" *.tmp.mp4 , raw/* ,",
               VFS_NOTIFIER_SETTLE_SECONDS="0.5")
    assert (s.check_structure, s.ignore, s.settle_seconds) == (False, ("*.tmp.mp4", "raw/*"), 0.5)
    assert s.provenance["registration.check_structure"] == ("false", "environment (VFS_NOTIFIER_CHECK_STRUCTURE)")
    assert settle(data, VFS_NOTIFIER_IGNORE="").ignore == ()


@pytest.mark.parametrize("var, value, problem", [
    ("VFS_NOTIFIER_CHECK_STRUCTURE", "sometimes", "not true or false ('sometimes')"),
    ("VFS_NOTIFIER_SETTLE_SECONDS", "soon", "not a number of seconds ('soon')"),
    ("VFS_NOTIFIER_SETTLE_SECONDS", "-1", "not a number of seconds from 0 up ('-1')"),
    ("VFS_NOTIFIER_IGNORE", "/srv/abs/*", "not a glob relative to a watched root ('/srv/abs/*')"),
])
def test_wrong_registration_values_name_the_variable(var, value, problem):
    assert error(env={**BASE_ENV, var: value}) == f"{var}: {problem} (from environment)"


def test_wrong_registration_values_in_the_file_name_the_key():
    assert error({"registration": {"ignore": [1, 2]}}) == \
        "registration.ignore: not a list of glob patterns ([1, 2]) (from /etc/vfs-notifier.toml)"
    assert error({"registration": {"check_structur": True}}).startswith(
        "registration.check_structur: unknown setting")
# --- registration: in place (the default) or copied to INTERNAL_VIDEO_FOLDER_PATH ---------

EARLIER_ENV = {**BASE_ENV, "CLIENT_VIDEO_DIR": "/srv/v/client", "INTERNAL_VIDEO_FOLDER_PATH": "/srv/v/internal"}


def test_client_video_dir_is_watched_and_internal_video_folder_path_unused_in_place():
    s = resolve({}, "/etc/vfs-notifier.toml", EARLIER_ENV)
    assert s.roots[0].path == "/srv/v/client"
    assert s.registration_mode == "in-place" and s.copy_to == ""
    (warning,) = s.warnings
    assert warning.startswith("INTERNAL_VIDEO_FOLDER_PATH is set (/srv/v/internal, from environment) "
                              "but unused: registration.mode is in-place")
    assert "VFS_NOTIFIER_REGISTRATION_MODE=copy" in warning


def test_no_warning_without_internal_video_folder_path():
    assert settle().warnings == ()
    assert settle(INTERNAL_VIDEO_FOLDER_PATH="").warnings == ()   # an empty line of an old .env


def test_copy_mode_copies_to_internal_video_folder_path():
    s = resolve({}, "f.toml", {**EARLIER_ENV, "VFS_NOTIFIER_REGISTRATION_MODE": "copy"})
    assert (s.registration_mode, s.copy_to, s.roots[0].path) == ("copy", "/srv/v/internal", "/srv/v/client")
    assert s.warnings == ()
    assert s.provenance["registration.copy_to"] == ("/srv/v/internal", "environment (INTERNAL_VIDEO_FOLDER_PATH)")
    assert s.provenance["registration.mode"] == ("copy", "environment (VFS_NOTIFIER_REGISTRATION_MODE)")


def test_copy_mode_from_the_file():
    data = {"registration": {"mode": "copy", "copy_to": "/srv/v/copies/"}}
    s = resolve(data, "f.toml", BASE_ENV)
    assert s.copy_to == "/srv/v/copies" and s.provenance["registration.copy_to"][1] == "f.toml"


def test_unknown_mode_names_the_variable():
    assert error(env={**BASE_ENV, "VFS_NOTIFIER_REGISTRATION_MODE": "move"}) == (
        "VFS_NOTIFIER_REGISTRATION_MODE: not one of in-place, copy ('move') (from environment)")


def test_copy_mode_needs_copy_to():
    assert error({"registration": {"mode": "copy"}}) == (
        "registration.copy_to (INTERNAL_VIDEO_FOLDER_PATH): required when registration.mode is copy "
        "(/etc/vfs-notifier.toml), set neither in /etc/vfs-notifier.toml nor in the environment")


@pytest.mark.parametrize("copy_to, problem", [
    ("internal", "INTERNAL_VIDEO_FOLDER_PATH: not an absolute path ('internal') (from environment)"),
    ("/srv/v/client", "INTERNAL_VIDEO_FOLDER_PATH: /srv/v/client is the watched directory /srv/v/client: "
                      "copies would be seen as new files (from environment)"),
    ("/srv/v/client/in", "INTERNAL_VIDEO_FOLDER_PATH: /srv/v/client/in lies inside the watched directory "
                         "/srv/v/client: copies would be seen as new files (from environment)"),
    ("/srv/v", "INTERNAL_VIDEO_FOLDER_PATH: the watched directory /srv/v/client lies inside /srv/v: "
               "copies would be seen as new files (from environment)"),
    ("/data/internal", "INTERNAL_VIDEO_FOLDER_PATH: /data/internal is not below BASE_PATH /srv/v, so "
                       "copies would have no URL (from environment)"),
])
def test_a_copy_destination_that_cannot_work_is_refused(copy_to, problem):
    env = {**EARLIER_ENV, "INTERNAL_VIDEO_FOLDER_PATH": copy_to, "VFS_NOTIFIER_REGISTRATION_MODE": "copy"}
    assert error(env=env) == problem


def test_copy_mode_refuses_a_second_root():
    env = {**EARLIER_ENV, "VFS_NOTIFIER_REGISTRATION_MODE": "copy", "STORAGE_PC_VIDEO_DIR": "/srv/v/storage"}
    assert error(env=env).startswith("STORAGE_PC_VIDEO_DIR: copy mode copies one watched directory")


def test_the_retired_internal_path_key_says_what_replaced_it():
    assert error({"roots": [{"path": "/srv/v/videos", "internal_path": "/videos"}]}).startswith(
        "roots[0].internal_path: no longer a setting: `path` is watched where it is")


def test_the_shipped_settings_file_loads_as_it_is():
    """etc/vfs-notifier.toml is what the package installs: it must load, every key known."""
    from pathlib import Path
    from vfs_notifier.settings import load
    shipped = Path(__file__).resolve().parents[1] / "etc" / "vfs-notifier.toml"
    settings = load(str(shipped), {"NGINX_BASE_URL": "http://media.example/videos"})
    assert settings.roots and settings.check_structure and settings.registration_mode == "in-place"


def test_database_nodes_follow_mysql_host_each_once():
    s = settle({"database": {"nodes": ["db2:3307", "[::1]", "db1"]}},
               MYSQL_HOST="db1", MYSQL_USER="u", MYSQL_DB_NAME="n")
    assert s.database.host == "db1"          # MYSQL_HOST keeps meaning one host: the first tried
    assert s.database.nodes == (("db2", 3307), ("::1", 3306), ("db1", 3306))
    assert s.database.servers == (("db1", 3306), ("db2", 3307), ("::1", 3306))
    assert s.provenance["database.nodes"] == ("db2:3307, [::1], db1", "/etc/vfs-notifier.toml")


def test_database_nodes_alone_configure_mysql_from_the_environment():
    s = settle(VFS_NOTIFIER_DATABASE_NODES="10.0.0.1:3306, 10.0.0.2:3306", MYSQL_USER="u", MYSQL_DB_NAME="n")
    assert s.database.uses_mysql and s.database.host == ""
    assert s.database.servers == (("10.0.0.1", 3306), ("10.0.0.2", 3306))


@pytest.mark.parametrize("value", ["db:0", "db:x", "a b", "[::1]x", "user@db"])
def test_a_wrong_node_is_named_with_its_source(value):
    message = error(env={**BASE_ENV, "VFS_NOTIFIER_DATABASE_NODES": value, "MYSQL_USER": "u", "MYSQL_DB_NAME": "n"})
    assert message.startswith("VFS_NOTIFIER_DATABASE_NODES: not host[:port]") and "(from environment)" in message


def test_nodes_need_a_user_and_database_like_a_host():
    assert error(env={**BASE_ENV, "VFS_NOTIFIER_DATABASE_NODES": "db2"}).startswith("database.user (MYSQL_USER): required")


def test_a_lease_shorter_than_two_polls_is_refused():
    assert settle().database.lease_seconds == 15
    message = error({"database": {"lease_seconds": 9}}, env=BASE_ENV)
    assert message.startswith("database.lease_seconds: 9 s is less than two service.poll_interval (5 s)")
    assert settle(VFS_NOTIFIER_LEASE_SECONDS="2", FOLDER_POLL_INTERVAL="1").database.lease_seconds == 2


def test_the_default_lease_outlasts_a_long_poll_of_an_earlier_env():
    s = settle(FOLDER_POLL_INTERVAL="30")            # worked before leases: must still start
    assert s.poll_interval == 30 and s.database.lease_seconds == 90
    assert s.provenance["database.lease_seconds"][1].startswith("default: 15 s, or 3 service.poll_interval")
    assert settle(FOLDER_POLL_INTERVAL="2").database.lease_seconds == 15
