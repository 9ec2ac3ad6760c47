"""settings.config_file alone: which file is read, and each way reading it fails as one
ConfigError naming the file or the setting that named it."""

from __future__ import annotations

import os

import pytest

from vfs_notifier.settings import DEFAULT_CONFIG, ConfigError, config_path, load

ENV = {"CLIENT_VIDEO_DIR": "/srv/v/videos", "BASE_PATH": "/srv/v", "NGINX_BASE_URL": "http://h/v"}


def test_the_command_line_wins_over_the_variable_and_only_the_default_may_be_missing():
    assert config_path("/a.toml", {"VFS_NOTIFIER_CONFIG": "/b.toml"}) == ("/a.toml", True)
    assert config_path(None, {"VFS_NOTIFIER_CONFIG": "/b.toml"}) == ("/b.toml", True)
    assert config_path(None, {"VFS_NOTIFIER_CONFIG": ""}) == (DEFAULT_CONFIG, False)


@pytest.mark.parametrize("cli, message", [(True, "--config: {path}: no such file (from command line)"),
                                          (False, "VFS_NOTIFIER_CONFIG: {path}: no such file (from environment)")])
def test_a_named_file_that_is_missing_is_an_error(tmp_path, cli, message):
    path = str(tmp_path / "missing.toml")
    with pytest.raises(ConfigError) as caught:
        load(path if cli else None, ENV if cli else {**ENV, "VFS_NOTIFIER_CONFIG": path})
    assert str(caught.value) == message.format(path=path)


@pytest.mark.parametrize("content, problem", [(b"[database\n", "not valid TOML: "),
                                              (b"# \xff\n", "not valid TOML: not UTF-8 text")])
def test_a_file_that_is_not_toml_is_named(tmp_path, content, problem):
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load(str(path), ENV)
    assert str(caught.value).startswith(f"{path}: {problem}")


def test_values_from_the_file_name_it_as_their_source(tmp_path):
    path = tmp_path / "v.toml"
    path.write_text('[service]\npoll_interval = 2\n')
    settings = load(str(path), ENV)
    assert settings.poll_interval == 2
    assert settings.provenance["service.poll_interval"] == ("2", str(path))


def test_a_password_every_user_can_read_is_warned_about_once(tmp_path):
    path = tmp_path / "v.toml"
    path.write_text('[registration]\ncopy_to = "/srv/v/in"\n[database]\npassword = "pw"\n')
    os.chmod(path, 0o644)
    warnings = load(str(path), ENV).warnings
    # The resolver's own warning (copy_to unused) stays, and the file's is added after it.
    assert len(warnings) == 2 and warnings[0].startswith("registration.copy_to is set")
    assert warnings[1] == f"{path} holds a database password and every user can read it: chmod o-r {path}"
    os.chmod(path, 0o600)
    assert len(load(str(path), ENV).warnings) == 1
