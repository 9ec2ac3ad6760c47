"""Hidden and temporary names are never rows, whatever they hold: the partial and holding
names of upload tools (rsync's `.~tmp~/`, `.NAME.XXXXXX`, browsers' `.part`), macOS
resource forks (`._Clip.MOV`), a trash directory, and a 0-byte file. Real video bytes are
put under most of these names, so that only the name can keep them out."""

from __future__ import annotations

import shutil
import struct

import pytest

from tests.uploads.support import RowHistory, assert_no_row, assert_one_row, files_below


def apple_double() -> bytes:
    """What macOS writes as `._NAME` on a foreign file system: an AppleDouble header (magic
    0x00051607) with a Finder-info and a resource-fork entry, 4 KiB."""
    header = struct.pack(">II16sH", 0x00051607, 0x00020000, b"Mac OS X        ", 2)
    entries = struct.pack(">III", 9, 50, 32) + struct.pack(">III", 2, 82, 4096 - 82)
    return (header + entries).ljust(4096, b"\0")


def _write_names(root, sources) -> list:
    """Every name that must stay without a row; returns them."""
    video = sources["mp4"]
    kept_out = {
        ".x.mp4": video, ".~tmp~/x.mp4": video, ".rsync-partial/y.mkv": sources["mkv"],
        ".Trash-0/files/old.mp4": video, ".hidden dir/inner/z.avi": sources["avi"],
        ".clip.mp4.Xy12Ab": video,          # rsync's temp name
        "x.mp4.part": video, "x.part": video, "film.mkv.crdownload": sources["mkv"],
        "movie.mp4.tmp": video,
    }
    written = []
    for name, source in kept_out.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        written.append(path)
    (root / "._Clip.MOV").write_bytes(apple_double())
    (root / "empty.mp4").write_bytes(b"")
    return written + [root / "._Clip.MOV", root / "empty.mp4"]


@pytest.mark.parametrize("when", ["while running", "before start"])
def test_hidden_and_temporary_names_get_no_row(when, utree, sources, start_service):
    """Beside them a real `Clip.MOV` gets its row: proof that the service looked."""
    clip = utree.root / "Clip.MOV"
    written = []
    if when == "before start":
        written = _write_names(utree.root, sources)
        shutil.copyfile(sources["mov"], clip)
    start_service()
    history = RowHistory(utree.table).start()
    try:
        if when == "while running":
            written = _write_names(utree.root, sources)
            shutil.copyfile(sources["mov"], clip)
        utree.table.wait_for(lambda rows: str(clip) in [r.path for r in rows], timeout=10,
                             what=f"a row for {clip.name}")
        assert_no_row(history, utree.root, f"hidden and temporary names ({when})", allowed=[clip])
        assert_one_row(history, clip, sources["mov"])
        assert len(written) == 12 and all(p.exists() for p in written), files_below(utree.root)
    finally:
        history.stop()
