"""The docs against the code, so that the next change cannot leave them behind.

Each side is read from where it lives, never from a list kept here: the commands from the
command line's own --help, the settings from `check-config` (which prints every one), the
environment variables from the settings code, the version from pyproject.toml, the package
and the Debian changelog, the modules from the vfs_notifier/ tree (subpackages included), the
batch size from the registrar, and what a root test run installs from scripts/test.
A failure names what is missing and where to write it.
"""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import io
import os
import re
import tomllib
from pathlib import Path

import pytest

import vfs_notifier
from vfs_notifier import cli

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "vfs_notifier"
README = REPO / "README.md"
MANPAGE = REPO / "packaging" / "debian" / "vfs-notifier.8"
CHANGELOG = REPO / "packaging" / "debian" / "changelog"
RELIABILITY = REPO / "docs" / "RELIABILITY.md"

ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")


# --- reading the docs ------------------------------------------------------------------------

def section(text: str, heading: str) -> str:
    """The body of the Markdown section `heading` (any level), up to the next heading of the
    same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    assert match, f"README has no section {heading!r}"
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.M).search(text, match.end())
    return text[match.end():end.start() if end else len(text)]


def table_rows(body: str) -> list[list[str]]:
    """The cells of each row of the first Markdown table in `body` (header and rule left out)."""
    rows = [line for line in body.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def ticked(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text()


# --- reading the code ------------------------------------------------------------------------

def commands() -> list[str]:
    """The commands the command line accepts, as its --help says them."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli.main(["--help"])
    match = re.search(r"\{([a-z,-]+)\}", out.getvalue())
    assert match, f"no {{command,...}} choice in --help:\n{out.getvalue()}"
    return match.group(1).split(",")


def setting_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> set[str]:
    """Every setting `check-config` shows, for a configuration with two roots (so that the
    per-root keys of both are shown)."""
    base = tmp_path / "srv"
    for name in ("a", "b"):
        (base / name).mkdir(parents=True)
    config = tmp_path / "empty.toml"
    config.write_text("")
    read = settings_env_names()   # whatever the developer's shell sets must not count
    for name in list(os.environ):
        if name in read or name.startswith(("MYSQL_", "VFS_NOTIFIER_", "NGINX_", "STORAGE_PC_")):
            monkeypatch.delenv(name)
    for name, value in {"VFS_NOTIFIER_CONFIG": str(config), "CLIENT_VIDEO_DIR": str(base / "a"),
                        "STORAGE_PC_VIDEO_DIR": str(base / "b"), "BASE_PATH": str(base),
                        "NGINX_BASE_URL": "http://media.test/v",
                        "VFS_NOTIFIER_SQLITE_PATH": str(tmp_path / "v.sqlite3"),
                        "LOG_BASE_DIRECTORY": str(tmp_path / "log")}.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["check-config"]) == 0
    keys = set()
    for line in capsys.readouterr().out.splitlines():
        match = re.match(r"([a-z_]+(?:\[\d+\])?\.[a-z_]+)\s+=", line)
        if match:
            keys.add(match.group(1))
    assert len(keys) > 10, "check-config printed no settings"
    return keys


def _sources(name: str) -> list[Path]:
    """vfs_notifier/NAME.py, or every module of the package vfs_notifier/NAME/."""
    if (PACKAGE / name).is_dir():
        return sorted((PACKAGE / name).rglob("*.py"))
    return [PACKAGE / f"{name}.py"]


def _constants(paths: list[Path]) -> list[ast.AST]:
    return [node for path in paths for node in ast.walk(ast.parse(path.read_text()))]


def settings_env_names() -> set[str]:
    """Every environment variable name the settings code spells out (a string like
    "MYSQL_HOST"; not one naming the code's own constants, as in `__all__`)."""
    nodes = _constants(_sources("settings"))
    own = {n.id for n in nodes if isinstance(n, ast.Name)} | {a.asname or a.name for n in nodes
                                                             if isinstance(n, ast.ImportFrom) for a in n.names}
    return {node.value for node in nodes
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and ENV_NAME.fullmatch(node.value) and node.value not in own}


def registrar_batch() -> int:
    """The registrar's BATCH: rows one write takes at most."""
    for node in _constants(_sources("registrar")):
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "BATCH" for t in node.targets)
                and isinstance(node.value, ast.Constant)):
            return node.value.value
    raise AssertionError("no BATCH = ... in vfs_notifier/registrar")


def modules() -> list[str]:
    """Every module of the package, relative to vfs_notifier/ ("store.py", "framing/bmff.py"),
    and every subpackage ("framing/"); __init__ and __main__ go with their package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if "__pycache__" in relative.parts:
            continue
        if relative.name in ("__init__.py", "__main__.py"):
            if len(relative.parts) > 1:
                found.append(relative.parent.as_posix() + "/")
            continue
        found.append(relative.as_posix())
    return found


def need_debs() -> set[str]:
    """The Debian packages scripts/test installs (as root, for the whole suite)."""
    script = (REPO / "scripts" / "test").read_text().replace("\\\n", " ")
    runtime = re.search(r"RUNTIME_DEBS=\(([^)]*)\)", (REPO / "scripts" / "lib.sh").read_text())
    assert runtime, "scripts/lib.sh sets no RUNTIME_DEBS=(...)"
    found: set[str] = set()
    for line in script.splitlines():
        words = line.split("#", 1)[0].split()
        if "need_debs" in words:
            for word in words[words.index("need_debs") + 1:]:
                found.update(runtime.group(1).split() if "RUNTIME_DEBS" in word else [word])
    assert found, "scripts/test calls need_debs nowhere"
    return found


# --- the tests -------------------------------------------------------------------------------

def test_every_command_is_in_the_usage_line_the_command_table_and_the_man_page(readme):
    accepted = commands()
    using = section(readme, "Using it")
    usage = re.search(r"^\s*vfs-notifier \[([a-z|-]+)\]", using, re.M)
    assert usage, "README's 'Using it' has no usage line `vfs-notifier [run|scan|...]`"
    # ... and lines of their own for commands that take arguments (`vfs-notifier release FILE...`)
    in_usage = usage.group(1).split("|") + re.findall(r"^\s*vfs-notifier ([a-z][a-z-]*)\b", using, re.M)
    assert sorted(set(in_usage)) == sorted(accepted), "README's usage lines against vfs-notifier --help"
    in_table = [ticked(row[0])[0].split()[0] for row in table_rows(section(readme, "Using it"))]
    assert sorted(in_table) == sorted(accepted), "README's command table against vfs-notifier --help"

    man = MANPAGE.read_text()
    synopsis_section = man.split(".SH SYNOPSIS", 1)[1].split(".SH ", 1)[0]
    synopsis = re.search(r"^\.RB \[ ([a-z |-]+) \]$", synopsis_section, re.M)
    assert synopsis, f"{MANPAGE.name}: no SYNOPSIS line `.RB [ run | scan | ... ]`"
    in_synopsis = ([c.strip() for c in synopsis.group(1).split("|")]
                   + re.findall(r"^\.B vfs-notifier ([a-z][a-z-]*)$", synopsis_section, re.M))
    assert sorted(set(in_synopsis)) == sorted(accepted), f"{MANPAGE.name} SYNOPSIS"
    commands_section = man.split(".SH COMMANDS", 1)[1].split(".SH ", 1)[0]
    described = re.findall(r'^\.TP\n\.BI? "?([a-z-]+)', commands_section, re.M)   # .B run, .BI release " FILE"
    assert sorted(described) == sorted(accepted), f"{MANPAGE.name} COMMANDS"


def test_every_setting_and_variable_is_in_the_settings_table(readme, tmp_path, monkeypatch, capsys):
    rows = table_rows(section(readme, "Settings"))
    documented_keys = {re.sub(r"\[\d+\]", "[N]", t) for row in rows for t in ticked(row[0]) if "." in t}
    code_keys = {re.sub(r"\[\d+\]", "[N]", k) for k in setting_keys(tmp_path, monkeypatch, capsys)}
    assert sorted(code_keys - documented_keys) == [], "settings missing from README's Settings table"
    assert sorted(documented_keys - code_keys) == [], "README's Settings table names settings the code lacks"

    documented_env = {name for row in rows for cell in row[1:2] for t in ticked(cell)
                      for name in ENV_NAME.findall(t)}
    code_env = settings_env_names()
    # The systemd-given directories and the settings file's variable are named in the text.
    said_in_readme = {name for name in code_env - documented_env if f"${name}" in readme or f"`{name}`" in readme}
    assert sorted(code_env - documented_env - said_in_readme) == [], \
        "environment variables the settings read that README never names"
    assert sorted(documented_env - code_env) == [], "README's Settings table names variables the code never reads"


def test_the_shipped_settings_file_names_every_setting(tmp_path, monkeypatch, capsys):
    """etc/vfs-notifier.toml, which README calls "every setting commented", set or commented
    out, in its section."""
    shipped = (REPO / "etc" / "vfs-notifier.toml").read_text()
    missing = []
    for key in sorted(setting_keys(tmp_path, monkeypatch, capsys)):
        table, _, name = key.partition(".")
        table = re.sub(r"\[\d+\]", "", table)
        header = re.search(rf"^#?\s*\[\[?{table}\]\]?\s*$", shipped, re.M)
        if not header or not re.search(rf"^#?\s*{name}\s*=", shipped[header.end():], re.M):
            missing.append(key)
    assert missing == [], "settings etc/vfs-notifier.toml does not show (as `name = ...` or `# name = ...`)"


def test_one_version_everywhere(readme):
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert vfs_notifier.__version__ == version, "vfs_notifier/__init__.py against pyproject.toml"
    top = re.match(r"vfs-notifier \(([^)]+)\)", CHANGELOG.read_text())
    assert top and top.group(1) == version, "packaging/debian/changelog's latest entry against pyproject.toml"
    th = re.search(r'^\.TH .*"vfs-notifier ([^"]+)"', MANPAGE.read_text(), re.M)
    assert th and th.group(1) == version, f"{MANPAGE.name} .TH line against pyproject.toml"
    for deb in re.findall(r"vfs-notifier_(\d[^_]*)_all\.deb", readme):
        assert deb == version, f"README names vfs-notifier_{deb}_all.deb; the package is {version}"


def test_the_layout_table_names_every_module(readme):
    # A row's modules may be listed in either cell: `vfs_notifier/settings/` | ... (`model`, `spec`)
    named_rows = [{t.removeprefix("vfs_notifier/") for t in ticked(" ".join(row))}
                  for row in table_rows(section(readme, "Layout"))
                  if ticked(row[0]) and ticked(row[0])[0].startswith("vfs_notifier/")]
    named = set().union(*named_rows)

    def covered(module: str) -> bool:
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in named):   # `framing/bmff*.py`
            return True
        package, _, name = module.rpartition("/")
        # `framing/` in a row, and `bmff.py` (or `bmff`) beside it in the same row
        return bool(package) and any(f"{package}/" in row and {name, name.removesuffix(".py")} & row
                                     for row in named_rows)

    missing = [m for m in modules() if not covered(m)]
    assert missing == [], "modules README's Layout table does not name (vfs_notifier/...)"
    real = set(modules()) | {m.rpartition("/")[2] for m in modules()}
    stale = sorted(t for t in named if t.endswith((".py", "/")) and not fnmatch.filter(real, t))
    assert stale == [], "README's Layout table names modules that no longer exist"


def test_the_batch_size_in_the_docs_is_the_registrars(readme):
    batch = registrar_batch()
    for path, text in ((README, readme), (RELIABILITY, RELIABILITY.read_text())):
        said = re.findall(r"batch(?:es)? of (?:up to )?([\d,]+)|up to ([\d,]+) rows", text)
        for number in (a or b for a, b in said):
            assert int(number.replace(",", "")) == batch, \
                f"{path.name} says batches of {number} rows; the registrar writes {batch:,} (registrar.BATCH)"


def test_the_list_of_what_a_root_run_installs_is_scripts_test(readme):
    body = section(readme, "What a root test run installs")
    first_paragraph = next(p for p in body.split("\n\n") if p.strip())
    listed = {t for t in ticked(first_paragraph) if re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", t)}
    installed = need_debs()
    assert sorted(installed - listed) == [], "packages scripts/test installs that README does not list"
    assert sorted(listed - installed) == [], "packages README lists that scripts/test does not install"
