"""The Galera section of docs/PERFORMANCE.md: written by `python3 -m bench.galera`, replaced by
its next run, kept when the main benchmark rewrites the rest of the file."""

from __future__ import annotations

from bench import report
from bench.galera import put_section

MAIN = "# Performance\n\n## Results side by side\n\nfigures\n\n## Machine and versions\n\n- 2 CPUs\n"


def _section(figure: str) -> str:
    return f"{report.GALERA_BEGIN}\n## One server and a Galera cluster\n\n{figure}\n{report.GALERA_END}\n"


def test_the_section_goes_before_the_machine_and_a_later_run_replaces_it(tmp_path) -> None:
    (tmp_path / "PERFORMANCE.md").write_text(MAIN)
    put_section(str(tmp_path), _section("first run"))
    put_section(str(tmp_path), _section("second run"))
    text = (tmp_path / "PERFORMANCE.md").read_text()
    assert "second run" in text and "first run" not in text
    assert text.count(report.GALERA_BEGIN) == 1
    assert text.index("figures") < text.index("second run") < text.index("## Machine and versions")


def test_the_main_benchmark_keeps_the_section_it_did_not_measure(tmp_path) -> None:
    path = tmp_path / "PERFORMANCE.md"
    path.write_text(MAIN)
    put_section(str(tmp_path), _section("galera figures"))
    rewritten = MAIN.replace("figures", "new figures")
    text = report._keep_galera(str(path), rewritten)
    assert "new figures" in text and "galera figures" in text
    assert text.index("galera figures") < text.index("## Machine and versions")
    assert report._keep_galera(str(tmp_path / "missing.md"), rewritten) == rewritten
