"""A download tool's control file beside NAME holds NAME, found by a walk's listing as by the
judge's own lookup: aria2c's NAME.aria2 and lftp pget's NAME.lftp-pget-status alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.media import write_video
from vfs_notifier.judge import CONTROL_FILES, HELD, Judge, Names, download_target
from vfs_notifier.walker import walk

EXTENSIONS = frozenset({"mp4", "mkv"})


@pytest.mark.parametrize("suffix", sorted(CONTROL_FILES))
def test_a_walk_lists_each_tools_control_file_beside_its_download(tmp_path: Path, suffix: str):
    write_video(tmp_path / "dl.mkv")
    write_video(tmp_path / "free.mp4")
    (tmp_path / f"dl.mkv{suffix}").write_text("control")
    listed: dict[str, bool] = {}
    found = {f.name: f.beside_control for f in walk(str(tmp_path), EXTENSIONS, lambda d: None, [],
                                                    lambda d, controls: listed.__setitem__(d, controls))}
    assert found == {"dl.mkv": True, "free.mp4": False}
    assert listed == {str(tmp_path): True}
    assert download_target(str(tmp_path / f"dl.mkv{suffix}")) == str(tmp_path / "dl.mkv")
    verdict = Judge(Names(EXTENSIONS)).judge_file(str(tmp_path / "dl.mkv"), "dl.mkv", closed=False,
                                                  control=True)
    assert verdict.state == HELD and CONTROL_FILES[suffix] in verdict.reason, verdict
