"""The gate's parts by job: each module a few hundred lines at most, each class at most
~250, the package's names as before (`from vfs_notifier.gate import Gate, Budget`), and every
kind of change the watcher reports handled by the events part."""

from __future__ import annotations

import ast
from pathlib import Path

import vfs_notifier.gate as gate_package
from vfs_notifier import budget, inotify_events
from vfs_notifier.gate import Budget, Gate
from vfs_notifier.gate.events import Events
from vfs_notifier.gate.walks import Walks

PACKAGE = Path(gate_package.__file__).parent


def test_the_package_keeps_its_names() -> None:
    assert Budget is budget.Budget
    assert issubclass(Gate, Events) and issubclass(Gate, Walks)


def test_parts_are_small() -> None:
    for module in sorted(PACKAGE.glob("*.py")):
        text = module.read_text()
        assert len(text.splitlines()) <= 400, module.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno - node.lineno + 1 <= 250, (module.name, node.name)


def test_every_kind_of_change_has_a_handler_in_the_events_part() -> None:
    kinds = {getattr(inotify_events, name) for name in dir(inotify_events)
             if name.startswith(("FILE_", "DIR_")) and name.isupper()}
    gate = Gate((), ("mp4",), judge=None, registrar=None)   # type: ignore[arg-type]
    assert set(gate._handlers) == kinds
    for kind, handler in gate._handlers.items():
        assert handler.__func__.__module__ == Events.__module__, kind
