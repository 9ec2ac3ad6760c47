"""settings.spec alone: the table of settings, and a file naming anything else refused."""

from __future__ import annotations

import pytest

from vfs_notifier.settings import ConfigError, spec

FILE = "/etc/vfs-notifier.toml"


def test_every_setting_has_one_toml_name_and_its_own_variables():
    keys = [s.key for s in spec.SPECS]
    assert len(keys) == len(set(keys))
    assert all(key.count(".") == 1 for key in keys)
    variables = [var for s in spec.SPECS for var in s.env]
    assert len(variables) == len(set(variables))
    # A setting is required, has a default, or is optional: never two of these.
    assert all((s.default is not None) + s.optional <= 1 for s in spec.SPECS)


def test_every_default_is_a_value_its_own_parser_gives_back():
    for s in spec.SPECS:
        if s.default is not None:
            raw = list(s.default) if isinstance(s.default, tuple) else s.default
            assert s.parse(raw) == s.default, s.key


@pytest.mark.parametrize("data, message", [
    ({"databse": {}}, "databse: unknown section"),
    ({"database": {"prot": 1}}, "database.prot: unknown setting"),
    ({"database": {"": 1}}, 'database."": unknown setting'),
    ({"database": {"a\nb": 1}}, 'database."a\\nb": unknown setting'),
    ({"roots": {"path": "/x"}}, "roots: must be a list of [[roots]] tables"),
    ({"roots": [{"path": "/x", "url": "u"}]}, "roots[0].url: unknown setting"),
    ({"roots": [{"internal_path": "/x"}]}, "roots[0].internal_path: no longer a setting"),
    ({"service": 5}, "service: must be a [table]"),
])
def test_a_name_no_setting_has_is_refused_in_one_line(data, message):
    with pytest.raises(ConfigError) as caught:
        spec.check_unknown_keys(data, FILE)
    assert str(caught.value).startswith(message)
    assert str(caught.value).endswith(f"(from {FILE})") and "\n" not in str(caught.value)


def test_known_names_pass():
    spec.check_unknown_keys({"database": {"host": "db", "nodes": []}, "roots": [{"path": "/x"}],
                             "registration": {"mode": "copy"}}, FILE)


def test_section_is_empty_when_the_file_has_none():
    assert spec.section({}, "urls", FILE) == {}
    assert spec.section({"urls": {"base_path": "/srv"}}, "urls", FILE) == {"base_path": "/srv"}
