"""Directory walks on real directories: what they yield, what they watch first, what they report."""

from __future__ import annotations

import os

from vfs_notifier.walker import WalkProblem, walk

EXTENSIONS = frozenset({"mp4", "mkv"})


def _tree(root):
    (root / "a" / "b").mkdir(parents=True)
    for rel in ("x.mp4", "a/y.MKV", "a/b/z.mp4", "a/readme.txt"):
        (root / rel).write_bytes(b"")
    return root


def test_yields_every_video_below_and_watches_each_directory_before_listing_it(tmp_path):
    root = _tree(tmp_path / "r")
    order: list[str] = []
    found = []
    for item in walk(str(root), EXTENSIONS, lambda d: order.append(d) or None, []):
        assert item.directory in order     # its directory was watched before it was listed
        found.append(os.path.join(item.directory, item.name))
    assert sorted(found) == sorted(str(root / p) for p in ("x.mp4", "a/y.MKV", "a/b/z.mp4"))
    assert sorted(order) == sorted(str(p) for p in (root, root / "a", root / "a" / "b"))


def test_never_follows_or_yields_links(tmp_path):
    root = _tree(tmp_path / "r")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"")
    os.symlink(outside, root / "linkdir")
    os.symlink(root / "x.mp4", root / "link.mp4")
    names = [f.name for f in walk(str(root), EXTENSIONS, lambda d: None, [])]
    assert "secret.mp4" not in names and "link.mp4" not in names


def test_a_problem_from_watching_is_reported_and_the_directory_still_listed(tmp_path):
    root = _tree(tmp_path / "r")
    problems: list[WalkProblem] = []
    found = list(walk(str(root), EXTENSIONS, lambda d: "cannot watch: test" if d.endswith("/a") else None,
                      problems))
    assert len(found) == 3
    assert problems == [WalkProblem(str(root / "a"), "cannot watch: test")]


def test_unreadable_and_undecodable_directories_are_reported_and_skipped(tmp_path):
    root = _tree(tmp_path / "r")
    bad = os.path.join(os.fsencode(root), b"caf\xe9")
    os.mkdir(bad)
    problems: list[WalkProblem] = []
    list(walk(str(root), EXTENSIONS, lambda d: None, problems))
    assert any("not valid UTF-8" in p.problem for p in problems)
    gone: list[WalkProblem] = []
    assert list(walk(str(tmp_path / "missing"), EXTENSIONS, lambda d: None, gone)) == [] and gone == []


def test_a_download_beside_its_control_file_is_said_and_the_listing_reported(tmp_path):
    root = _tree(tmp_path / "r")
    (root / "a" / "y.MKV.aria2").write_bytes(b"")           # listed in any order beside y.MKV
    listed: dict[str, bool] = {}
    found = {f.name: f.beside_control for f in walk(str(root), EXTENSIONS, lambda d: None, [],
                                                    lambda d, controls: listed.__setitem__(d, controls))}
    assert found == {"x.mp4": False, "y.MKV": True, "z.mp4": False}
    assert listed == {str(root): False, str(root / "a"): True, str(root / "a" / "b"): False}
