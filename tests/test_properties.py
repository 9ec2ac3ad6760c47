"""Properties, with hypothesis: the path-to-URL mapping (vfs_notifier/rows.py) and the settings
parser (vfs_notifier/settings/ resolve()), for inputs nobody thought of."""

from __future__ import annotations

import os
import string
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, assume, example, given, settings, strategies as st

from vfs_notifier.rows import COLUMN_CHARS, RowMaker, Unstorable, is_video, printable
from vfs_notifier.settings import ConfigError, Root, resolve

PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASE_PATH = "/srv/media"
BASE_URL = "http://media.test/v"
ROOT = Root(path="/srv/media/videos", base_url=BASE_URL, base_path=BASE_PATH)
EXT = frozenset({"mp4", "avi", "mov", "mkv"})
UNRESERVED = set(string.ascii_letters + string.digits + "-._~")
MARK = "\u2603"   # only secrets hold it, so finding it anywhere else is a leak

# --- the path-to-URL mapping -------------------------------------------------------------

# Any name a file can have that is valid UTF-8: no "/", no NUL, not "." or "..".
segment = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
                  min_size=1, max_size=40).filter(lambda s: s not in (".", ".."))
# Names as os.fsdecode gives them for arbitrary bytes: invalid UTF-8 becomes surrogates.
raw_segment = st.binary(min_size=1, max_size=40).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..")).map(os.fsdecode)


@PROFILE
@given(dirs=st.lists(segment, max_size=4), name=segment)
@example(dirs=["a b", "#?%"], name="%2F;x.mp4")
def test_url_round_trips_to_the_relative_path(dirs, name):
    directory = "/".join([ROOT.path, *dirs])
    try:
        row = RowMaker(ROOT).row(directory, name)
    except Unstorable as err:
        path = directory + "/" + name
        assert len(path) > COLUMN_CHARS or "URL is" in str(err), err
        return
    suffix = row.url[len(BASE_URL) + 1:]
    assert row.url.startswith(BASE_URL + "/")
    assert unquote(suffix, errors="strict") == os.path.relpath(row.path, BASE_PATH)
    assert row.path == directory + "/" + name             # the exact path, never altered
    assert row.main_dir == ROOT.path


@PROFILE
@given(dirs=st.lists(segment, max_size=3), name=segment)
def test_url_never_holds_a_raw_reserved_character(dirs, name):
    try:
        url = RowMaker(ROOT).row("/".join([ROOT.path, *dirs]), name).url
    except Unstorable:
        return
    suffix = url[len(BASE_URL) + 1:]
    for index, char in enumerate(suffix):
        if char == "%":
            assert suffix[index + 1:index + 3].strip(string.hexdigits.upper()) == ""
        else:
            assert char in UNRESERVED or char == "/", (char, url)
    # each directory and the name is exactly one segment: a "/" in the URL is a real one
    assert suffix.count("/") == len(dirs) + 1


@PROFILE
@given(dirs=st.lists(raw_segment, max_size=3), name=raw_segment)
def test_any_bytes_give_a_correct_row_or_unstorable(dirs, name):
    directory = "/".join([ROOT.path, *dirs])
    path = directory + "/" + name
    try:
        row = RowMaker(ROOT).row(directory, name)
    except Unstorable as err:
        valid = not any("\udc80" <= c <= "\udcff" for c in path)
        assert not valid or len(path) > COLUMN_CHARS or "URL is" in str(err)
        return
    path.encode("utf-8")                                   # a stored row is valid UTF-8
    assert row.path == path
    assert unquote(row.url[len(BASE_URL) + 1:], errors="strict") == os.path.relpath(path, BASE_PATH)


@PROFILE
@given(depth=st.integers(0, 8), char=st.sampled_from(["a", "é", "😀", "%", " "]),
       extra=st.integers(-3, 3))
def test_length_limits_are_in_characters_and_never_truncate(depth, char, extra):
    """Paths around the column's 1024 characters: within it a row holds the exact path and
    URL; past it, Unstorable; never a shortened value."""
    directory = ROOT.path + "".join("/" + char * 100 for _ in range(depth))
    room = COLUMN_CHARS - len(directory) - 1 + extra
    assume(room >= 5)
    name = char * (room - 4) + ".mp4"
    path = directory + "/" + name
    try:
        row = RowMaker(ROOT).row(directory, name)
    except Unstorable as err:
        relative = os.path.relpath(path, BASE_PATH)
        url_chars = len(BASE_URL) + 1 + len("/".join(quote(s, safe="") for s in relative.split("/")))
        assert len(path) > COLUMN_CHARS or (url_chars > COLUMN_CHARS and "URL is" in str(err)), err
        return
    assert len(path) <= COLUMN_CHARS and row.path == path
    assert len(row.url) <= COLUMN_CHARS
    assert unquote(row.url[len(BASE_URL) + 1:]) == os.path.relpath(path, BASE_PATH)


@PROFILE
@given(stem=segment, ending=st.sampled_from(["mp4", "MP4", "Mkv", "avi", "mOv", "mp3", "mp4.part", "", "webm"]))
def test_is_video_by_ending_in_any_case(stem, ending):
    name = f"{stem}.{ending}" if ending else stem
    expected = "." in name and name.rsplit(".", 1)[1].lower() in EXT
    assert is_video(name, EXT) is expected


@PROFILE
@given(dirs=st.lists(raw_segment, max_size=3))
def test_printable_is_one_line(dirs):
    shown = printable("/".join(["/srv", *dirs]))
    assert "\n" not in shown and "\r" not in shown
    shown.encode("utf-8")                                  # a log line can always hold it


@PROFILE
@given(dirs=st.lists(segment, max_size=3), name=segment)
def test_a_copy_row_is_the_file_row_moved_below_copy_to(dirs, name):
    """Copy mode changes where the row's path points, never the rest of the row."""
    try:
        here = RowMaker(ROOT).row("/".join([ROOT.path, *dirs]), name)
    except Unstorable:
        return
    copy = RowMaker(ROOT, copy_to=BASE_PATH + "/copies").row("/".join([ROOT.path, *dirs]), name)
    assert copy.main_dir == here.main_dir
    assert copy.path == BASE_PATH + "/copies" + here.path[len(ROOT.path):]
    assert copy.url == BASE_URL + "/copies" + here.url[len(BASE_URL + "/videos"):]


# --- the settings parser ------------------------------------------------------------------

VARIABLES = ["MYSQL_HOST", "MYSQL_PORT", "MYSQL_USER", "MYSQL_PASS", "MYSQL_PASS_FILE", "MYSQL_SOCKET",
             "MYSQL_DB_NAME", "CLIENT_VIDEO_DIR", "INTERNAL_VIDEO_FOLDER_PATH", "NGINX_BASE_URL",
             "NGINX_INTERNAL_PATH", "NGINX_SERVE_DIRECTORY", "BASE_PATH", "FOLDER_POLL_INTERVAL",
             "STORAGE_PC_VIDEO_DIR", "STORAGE_PC_BASE_URL", "LOG_BASE_DIRECTORY", "VFS_NOTIFIER_SQLITE_PATH",
             "VFS_NOTIFIER_RESCAN_INTERVAL", "VFS_NOTIFIER_FORGET_REMOVED", "VFS_NOTIFIER_LOG_LEVEL",
             "VFS_NOTIFIER_EXTENSIONS", "VFS_NOTIFIER_REGISTRATION_MODE"]
VALID_ENV = {"CLIENT_VIDEO_DIR": "/srv/media/videos", "BASE_PATH": "/srv/media", "NGINX_BASE_URL": BASE_URL,
             "MYSQL_HOST": "db", "MYSQL_USER": "u", "MYSQL_DB_NAME": "videos", "MYSQL_PASS": MARK + "pw"}
FILE = "/etc/vfs-notifier.toml"

plain = st.text(st.characters(blacklist_characters=MARK, blacklist_categories=("Cs",)), max_size=30)
env_value = st.one_of(plain, st.sampled_from(
    ["", " ", "0", "-1", "1e400", "nan", "inf", "abc", "/", "/srv/media", "/srv/media/videos/x", "relative",
     "http://", "http://x", "ftp://x", "true", "no", "65536", "3306", "/etc/passwd", "a,b", ",", "debug", "copy", "in-place", "/srv/media/internal"]))
secret = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20).map(lambda s: MARK + s)
toml_scalar = st.one_of(plain, st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True),
                        st.booleans(), st.lists(plain, max_size=3))
known_keys = {"database": ["host", "port", "socket", "user", "name", "password", "password_file", "sqlite_path"],
              "urls": ["base_url", "base_path", "nginx_root"],
              "service": ["poll_interval", "rescan_interval", "forget_removed", "extensions"],
              "logging": ["directory", "level"],
              "registration": ["mode", "copy_to"]}


@st.composite
def toml_data(draw):
    data = {}
    for section in draw(st.lists(st.sampled_from([*known_keys, "roots", "extra"]), max_size=4, unique=True)):
        if section == "roots":
            tables = draw(st.lists(st.dictionaries(
                st.sampled_from(["path", "base_url", "base_path", "bogus"]),
                st.one_of(toml_scalar, st.sampled_from(["/srv/media/videos", "/srv/media/two", "/elsewhere"]))),
                max_size=3))
            data["roots"] = draw(st.one_of(st.just(tables), toml_scalar))
        elif section == "extra":
            data[draw(plain)] = draw(toml_scalar)
        else:
            keys = known_keys[section] + ["bogus"]
            data[section] = draw(st.one_of(
                st.dictionaries(st.sampled_from(keys), toml_scalar, max_size=4), toml_scalar))
    return data


def _reader(path: str) -> str:
    if path.endswith("readable"):
        return MARK + "from-file"
    raise PermissionError(13, "Permission denied")


def _no_secret(settings_or_error) -> None:
    if isinstance(settings_or_error, ConfigError):
        texts = [str(settings_or_error), repr(settings_or_error)]
    else:
        texts = [repr(settings_or_error), repr(settings_or_error.database)]
        texts += [f"{v} {s}" for v, s in settings_or_error.provenance.values()]
    for text in texts:
        assert MARK not in text, text


@PROFILE
@given(variable=st.sampled_from(VARIABLES), value=env_value)
def test_one_bad_variable_is_named_with_its_source(variable, value):
    """Start from a valid environment and change one variable to anything: either it
    resolves, or the one error names that variable and says it came from the environment."""
    env = {**VALID_ENV, variable: value}
    try:
        result = resolve({}, FILE, env, read_secret=_reader)
    except ConfigError as err:
        message = str(err)
        assert "\n" not in message
        named = {variable}
        if variable == "BASE_PATH":
            named.add("CLIENT_VIDEO_DIR")          # "CLIENT_VIDEO_DIR ... is not below BASE_PATH"
        if variable == "STORAGE_PC_BASE_URL":
            named.add("STORAGE_PC_VIDEO_DIR")      # a second root's URL without its directory
        assert any(name in message for name in named), message
        # its source: the environment, or (unset, empty) "required" saying where it was looked for
        assert "environment" in message or "required" in message, message
        _no_secret(err)
        return
    _no_secret(result)
    assert result.database.password == (value if variable == "MYSQL_PASS" else VALID_ENV["MYSQL_PASS"])


@PROFILE
@given(data=toml_data(), env=st.dictionaries(st.sampled_from(VARIABLES), env_value, max_size=4),
       password=secret, where=st.sampled_from(["env", "file", "password_file", "credential"]))
def test_resolve_raises_only_config_error_and_never_shows_the_password(data, env, password, where):
    env = dict(env)
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for key in ("MYSQL_PASS", "MYSQL_PASS_FILE"):
        env.pop(key, None)
    if isinstance(data.get("database"), dict):
        data["database"].pop("password", None)
        data["database"].pop("password_file", None)
    if where == "env":
        env["MYSQL_PASS"] = password
    elif where == "file":
        data["database"] = {**(data["database"] if isinstance(data.get("database"), dict) else {}),
                            "password": password}
    elif where == "password_file":
        env["MYSQL_PASS_FILE"] = "/run/secrets/readable"
    else:
        env["CREDENTIALS_DIRECTORY"] = "/run/credentials/readable-dir"
    try:
        result = resolve(data, FILE, env, read_secret=_reader)
    except ConfigError as err:
        assert err.setting and "\n" not in str(err)
        _no_secret(err)
        return
    _no_secret(result)
    for value, source in result.provenance.values():
        assert source == FILE or source.startswith(
            ("default", "environment (", "file ", "systemd credential")), source


@PROFILE
@given(value=st.one_of(toml_scalar.filter(lambda v: not isinstance(v, str)),
                       st.dictionaries(plain, plain, max_size=2)))
def test_a_password_that_is_not_text_is_not_echoed(value):
    data = {"database": {"password": value}}
    with pytest.raises(ConfigError) as caught:
        resolve(data, FILE, VALID_ENV | {"MYSQL_PASS": ""}, read_secret=_reader)
    assert caught.value.setting == "database.password"
    if not isinstance(value, bool):
        assert repr(value) not in str(caught.value) or repr(value) in ("0", "1")
