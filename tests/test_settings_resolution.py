"""settings.resolution's Resolver alone: environment over file over default, each value's
source remembered, and a setting named back to the user as they set it."""

from __future__ import annotations

import pytest

from vfs_notifier.settings import ConfigError, parsers
from vfs_notifier.settings.resolution import Resolver, show

FILE = "/etc/vfs-notifier.toml"


def test_the_environment_wins_then_the_file_then_the_default():
    res = Resolver({}, FILE, {"B": "7"})
    assert res.get("s.a", ("A",), parsers.port, 5, default=3306) == 5
    assert res.get("s.b", ("B",), parsers.port, 5, default=3306) == 7
    assert res.get("s.c", ("C",), parsers.port, None, default=3306, note="built in") == 3306
    assert res.provenance == {"s.a": ("5", FILE), "s.b": ("7", "environment (B)"),
                              "s.c": ("3306", "default: built in")}


def test_the_first_variable_set_wins_and_an_empty_one_counts_only_for_required_settings():
    res = Resolver({}, FILE, {"OLD": "/old", "NEW": ""})
    assert res.get("u.root", ("NEW", "OLD"), parsers.path, None, optional=True) == "/old"
    with pytest.raises(ConfigError, match=r"^NEW: empty \(from environment\)$"):
        res.get("u.other", ("NEW", "OLD"), parsers.path, None)


def test_an_unset_optional_setting_is_empty_and_a_required_one_is_an_error():
    res = Resolver({}, FILE, {})
    assert res.get("d.host", ("MYSQL_HOST",), parsers.text, None, optional=True, note="no server") == ""
    assert res.provenance["d.host"] == ("(unset)", "default: no server")
    with pytest.raises(ConfigError) as caught:
        res.get("u.base_path", ("BASE_PATH",), parsers.path, None)
    assert str(caught.value) == (f"u.base_path (BASE_PATH): required, set neither in {FILE} "
                                 f"nor in the environment")


def test_a_secret_is_hidden_in_provenance_and_in_its_error():
    res = Resolver({}, FILE, {"MYSQL_PASS": "pw"})
    assert res.get("database.password", ("MYSQL_PASS",), parsers.text, None, optional=True) == "pw"
    assert res.provenance["database.password"] == ("(hidden)", "environment (MYSQL_PASS)")
    with pytest.raises(ConfigError) as caught:
        res.get("database.password", (), parsers.text, 12345)
    assert str(caught.value) == f"database.password: not usable (value not shown) (from {FILE})"
    assert "12345" not in str(caught.value)


def test_a_setting_is_named_as_the_user_set_it():
    res = Resolver({}, FILE, {"STORAGE_PC_VIDEO_DIR": "/srv/b"})
    res.get("roots[1].path", ("STORAGE_PC_VIDEO_DIR",), parsers.path, None)
    res.get("roots[0].path", ("CLIENT_VIDEO_DIR",), parsers.path, "/srv/a")
    assert res.setting_and_source("roots[1].path") == ("STORAGE_PC_VIDEO_DIR", "environment")
    assert res.setting_and_source("roots[0].path") == ("roots[0].path", FILE)
    # Not resolved (yet): named by its key, from the file.
    assert res.setting_and_source("roots[2].path") == ("roots[2].path", FILE)


@pytest.mark.parametrize("value, shown", [(("mp4", "mkv"), "mp4, mkv"), (True, "true"), (15.0, "15"),
                                          (2.5, "2.5"), (3306, "3306")])
def test_values_are_shown_as_a_person_would_write_them(value, shown):
    assert show(value) == shown
