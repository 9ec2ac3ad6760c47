"""settings.secrets alone: where the password comes from, said in provenance but never shown."""

from __future__ import annotations

import pytest

from vfs_notifier.settings import ConfigError, secrets

UNSET = {"database.password": "", "database.password_file": ""}


def test_a_password_set_directly_wins_and_nothing_is_read():
    def refuse(path):
        raise AssertionError(f"read {path}")
    provenance: dict = {}
    values = {"database.password": "direct", "database.password_file": "/run/pw"}
    assert secrets.resolve_password(values, provenance, {"CREDENTIALS_DIRECTORY": "/c"}, refuse) == "direct"
    assert provenance == {}


def test_a_password_file_is_read_and_named_as_the_source(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret\r\nsecond line\n")
    provenance = {"database.password_file": (str(pw), "/etc/vfs-notifier.toml")}
    values = {**UNSET, "database.password_file": str(pw)}
    assert secrets.resolve_password(values, provenance, {}, secrets.read_first_line) == "s3cret"
    assert provenance["database.password"] == ("(hidden)", f"file {pw}")


@pytest.mark.parametrize("source, setting", [("environment (MYSQL_PASS_FILE)", "MYSQL_PASS_FILE"),
                                             ("/etc/vfs-notifier.toml", "database.password_file")])
def test_an_unreadable_password_file_is_named_as_the_user_set_it(tmp_path, source, setting):
    missing = str(tmp_path / "missing")
    values = {**UNSET, "database.password_file": missing}
    with pytest.raises(ConfigError) as caught:
        secrets.resolve_password(values, {"database.password_file": (missing, source)}, {},
                                 secrets.read_first_line)
    assert str(caught.value).startswith(f"{setting}: cannot read {missing}: No such file or directory")


def test_the_systemd_credential_is_read_when_nothing_else_is_set(tmp_path):
    (tmp_path / secrets.CREDENTIAL_NAME).write_text("from-cred\n")
    provenance: dict = {}
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert secrets.resolve_password(UNSET, provenance, env, secrets.read_first_line) == "from-cred"
    assert provenance["database.password"] == ("(hidden)", "systemd credential mysql-password")


def test_no_credential_file_means_no_password(tmp_path):
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert secrets.resolve_password(UNSET, {}, env, secrets.read_first_line) == ""


def test_a_world_readable_file_with_a_password_is_warned_about():
    data = {"database": {"password": "pw"}}
    warning = secrets.exposed_password_warning(data, "/etc/v.toml", 0o100644)
    assert warning == "/etc/v.toml holds a database password and every user can read it: chmod o-r /etc/v.toml"
    assert "pw" not in warning.replace("password", "")
    assert secrets.exposed_password_warning(data, "/etc/v.toml", 0o100640) is None
    assert secrets.exposed_password_warning({"database": {}}, "/etc/v.toml", 0o100644) is None
