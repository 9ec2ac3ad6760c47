"""settings.parsers alone: each takes TOML's typed values and the environment's strings,
and says what is wrong without naming a setting (the resolver adds that)."""

from __future__ import annotations

import pytest

from vfs_notifier.settings import parsers


@pytest.mark.parametrize("parse, raw, value", [
    (parsers.path, "/srv//v/./x/", "/srv/v/x"),
    (parsers.url, " https://h/v/ ", "https://h/v"),
    (parsers.port, "3307", 3307),
    (parsers.port, 3307, 3307),
    (parsers.seconds, "2.5", 2.5),
    (parsers.seconds, 0, 0.0),
    (parsers.positive_seconds, 1, 1.0),
    (parsers.boolean, "Yes", True),
    (parsers.boolean, "off", False),
    (parsers.boolean, False, False),
    (parsers.extensions, ".MP4, mkv", ("mp4", "mkv")),
    (parsers.extensions, ["avi"], ("avi",)),
    (parsers.globs, "*.part, , tmp/*", ("*.part", "tmp/*")),
    (parsers.nodes, "db1, db2:3307,", ("db1", "db2:3307")),
    (parsers.mode, " COPY", "copy"),
    (parsers.level, "Warning", "warning"),
])
def test_a_good_value_from_either_source(parse, raw, value):
    assert parse(raw) == value


@pytest.mark.parametrize("parse, raw, problem", [
    (parsers.text, 5, "not a string"),
    (parsers.path, "", "empty"),
    (parsers.path, "srv/v", "not an absolute path"),
    (parsers.url, "ftp://h/v", "not a URL starting with http:// or https://"),
    (parsers.url, "http://h/v?x=1", "a base URL takes no query or fragment"),
    (parsers.port, "0", "not a port number 1-65535"),
    (parsers.port, True, "not a number"),          # TOML's true is not 1
    (parsers.integer, "3.5", "not a number"),
    (parsers.seconds, "nan", "not a number of seconds from 0 up"),
    (parsers.seconds, -1, "not a number of seconds from 0 up"),
    (parsers.positive_seconds, "0", "must be more than 0 seconds"),
    (parsers.boolean, "maybe", "not true or false"),
    (parsers.extensions, "mp4,,mkv", "not a list of file name endings"),
    (parsers.extensions, "a/b", "not a list of file name endings"),
    (parsers.globs, "/abs/*", "not a glob relative to a watched root"),
    (parsers.nodes, ["db", 3306], "not a list of host[:port]"),
    (parsers.mode, "mirror", "not one of in-place, copy"),
    (parsers.level, "trace", "not one of debug, info, warning, error"),
])
def test_a_wrong_value_says_what_is_wrong(parse, raw, problem):
    with pytest.raises(ValueError) as caught:
        parse(raw)
    assert str(caught.value).startswith(problem)


@pytest.mark.parametrize("node, pair", [
    ("db", ("db", 3306)),
    ("db:3307", ("db", 3307)),
    ("[::1]", ("::1", 3306)),
    ("[fe80::1]:3308", ("fe80::1", 3308)),
    ("::1", ("::1", 3306)),          # a bare v6 address: more than one colon, no port
])
def test_split_node_gives_host_and_port(node, pair):
    assert parsers.split_node(node, 3306) == pair


@pytest.mark.parametrize("node", ["", ":3306", "db:x", "db:70000", "[::1]x", "a b", "u@db", "db/x"])
def test_split_node_refuses_what_is_not_host_and_port(node):
    with pytest.raises(ValueError, match=r"^not host\[:port\]"):
        parsers.split_node(node, 3306)
