"""Turns a run's results into docs/PERFORMANCE.md and the scaling chart.

`python3 -m bench.report RESULTS.json [DOCS_DIR]` rewrites both from a saved run.
"""
from __future__ import annotations

import json
import os
import sys

from . import stress_report
from .contenders import DAEMON, LIMIT, NAIVE, SHELL

# The section `python3 -m bench.galera` writes into PERFORMANCE.md, kept when this rewrites it.
GALERA_BEGIN, GALERA_END = "<!-- galera: python3 -m bench.galera -->", "<!-- /galera -->"
COMMAND = "make bench   # = sudo scripts/bench; about 6 minutes"
NA = "—"


def _get(d: dict, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _s(x: float | None, digits: int = 2) -> str:
    return NA if x is None else f"{x:,.{digits}f}"


def _n(x: float | None) -> str:
    return NA if x is None else f"{x:,.0f}"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**PASS**" if ok else "**FAIL**")


def goals(r: dict) -> list[tuple[str, str, str]]:
    """(goal, what was measured, PASS/FAIL) for every goal of issue 4."""
    main = r["config"]["main"]
    out = []
    cold_d, cold_l = _get(r, "cold", DAEMON, main, "seconds"), _get(r, "cold", LIMIT, main, "seconds")
    ratio = cold_d / cold_l if cold_d and cold_l else None
    out.append((f"cold start ≤ 1.3 × limit ({main:,} files)",
                f"{_s(cold_d)} s vs {_s(cold_l)} s = {_s(ratio)} ×", _verdict(ratio and ratio <= 1.3)))
    warm_d, warm_l = _get(r, "warm", DAEMON, "seconds"), _get(r, "warm", LIMIT, "seconds")
    inserted = _get(r, "warm", DAEMON, "inserted")
    ratio = warm_d / warm_l if warm_d and warm_l else None
    out.append(("warm restart ≤ 1.5 × (bare walk + one read of the registered paths)",
                f"{_s(warm_d)} s vs {_s(warm_l)} s = {_s(ratio)} ×",
                _verdict(ratio and ratio <= 1.5)))
    out.append(("warm restart inserts 0 rows", f"{NA if inserted is None else inserted} rows",
                _verdict(None if inserted is None else inserted == 0)))
    lag = _get(r, "burst", DAEMON, "lag_s")
    runs = [x.get("lag_s") for x in _get(r, "burst", DAEMON, "runs") or []]
    each = f" (median; runs {', '.join(_s(x, 3) for x in runs)})" if len(runs) > 1 else ""
    err = _get(r, "burst", DAEMON, "error")
    if err and lag is None:   # it never caught up: the goal is not met, whatever the figure
        out.append(("burst lag < 0.5 s", f"never caught up: {err}", "**FAIL**"))
    else:
        out.append(("burst lag < 0.5 s", f"{_s(lag, 3)} s{each}",
                    _verdict(None if lag is None else lag < 0.5)))
    tp = _get(r, "burst", DAEMON, "files_per_s")
    writer = _get(r, "burst", DAEMON, "writer_files_per_s")
    # Kept up with the writer (no lag): the writer, not the service, set the throughput.
    writer_bound = bool(tp and writer and lag is not None and lag < 0.1 and tp >= 0.9 * writer)
    for other, factor in ((NAIVE, 10), (SHELL, 100)):
        o = _get(r, "burst", other, "files_per_s")
        ratio = tp / o if tp and o else None
        verdict = _verdict(None if ratio is None else ratio >= factor)
        if err and tp is None:
            verdict = "**FAIL** (the burst never completed)"
        if ratio is not None and ratio < factor and writer_bound:
            verdict += f" (writer-bound: the writer made {_n(writer)} files/s and the service kept up)"
        out.append((f"burst throughput ≥ {factor} × {other}",
                    f"{_n(tp)} vs {_n(o)} files/s = {_s(ratio, 1)} ×", verdict))
    p99 = _get(r, "latency", DAEMON, "p99_ms")
    missed = _get(r, "latency", DAEMON, "missed")
    if p99 is None and missed:
        out.append(("single-file latency p99 < 10 ms", f"no row came for {missed} files (5 s each)",
                    "**FAIL**"))
    else:
        out.append(("single-file latency p99 < 10 ms", f"{_s(p99, 1)} ms"
                    + (f"; {missed} files never registered" if missed else ""),
                    _verdict(None if p99 is None else p99 < 10 and not missed)))
    rss = _get(r, "memory", DAEMON, "rss_mb")
    hwm = _get(r, "memory", DAEMON, "hwm_mb")
    out.append((f"≤ 48 MB resident at {r['config']['mem_files']:,} files",
                f"VmRSS {_s(rss, 1)} MB (peak VmHWM {_s(hwm, 1)} MB)",
                _verdict(None if rss is None else rss <= 48)))
    sizes = r["config"]["sizes"]
    lo, hi = sizes[1], sizes[-1]
    a, b = _get(r, "cold", DAEMON, lo, "seconds"), _get(r, "cold", DAEMON, hi, "seconds")
    if a and b:
        pa, pb = a / lo * 1e6, b / hi * 1e6
        change = pb / pa - 1
        out.append((f"linear scaling: time per file at {hi:,} within 20% of {lo:,}",
                    f"{pb:.1f} µs vs {pa:.1f} µs per file ({change:+.0%})", _verdict(abs(change) <= 0.2)))
    else:
        out.append((f"linear scaling: time per file at {hi:,} within 20% of {lo:,}", NA, "n/a"))
    return out


def _cold_cell(r: dict, c: str, size: int) -> str:
    e = _get(r, "cold", c, size)
    if not e:
        return NA
    if e.get("seconds") is None:
        return "timed out"
    txt = f"{e['seconds']:,.2f} s ({size / e['seconds']:,.0f}/s)"
    return txt if e.get("measured", True) else f"≈ {txt} ¹"


def table(r: dict) -> list[str]:
    main, cfg = r["config"]["main"], r["config"]
    cols = (LIMIT, NAIVE, SHELL, DAEMON)
    rows = [f"| scenario | {' | '.join(cols)} |", "|---|" + "---|" * len(cols)]

    def row(title: str, cells: list[str]) -> None:
        rows.append(f"| {title} | " + " | ".join(cells) + " |")

    row(f"1. cold start, {main:,} files / {main // cfg['files_per_dir']:,} dirs, empty table",
        [_cold_cell(r, c, main) if c != SHELL else "does not scan" for c in cols])
    cells = []
    for c in cols:
        w = _get(r, "warm", c)
        if c == SHELL:
            cells.append("does not scan")
        elif not w or w.get("seconds") is None:
            cells.append(NA)
        else:
            txt = f"{w['seconds']:,.2f} s, {w.get('inserted', 0)} inserted"
            if c == LIMIT:
                txt = f"{w['seconds']:,.2f} s (bare walk + one SELECT)"
            cells.append(txt if w.get("measured", True) else f"≈ {txt} ²")
    row(f"2. warm restart, {main:,} files all registered", cells)
    cells = []
    for c in cols:
        b = _get(r, "burst", c)
        if c == LIMIT:
            cells.append("— (the writer's own speed, in each cell, is the ceiling)")
        elif not b or b.get("files_per_s") is None:
            cells.append(b.get("error", NA) if b else NA)
        else:
            cells.append(f"{b['files']:,} files: **{b['files_per_s']:,.0f}/s**, lag {b['lag_s']:.3f} s "
                         f"(writer {b['writer_files_per_s']:,.0f}/s)")
    row("3. live burst from a writer process: throughput, lag after the last close", cells)
    cells = []
    for c in cols:
        l = _get(r, "latency", c)
        if not l or "p50_ms" not in l:
            cells.append(NA)
        else:
            cells.append(f"{l['p50_ms']:.1f} / {l['p95_ms']:.1f} / **{l['p99_ms']:.1f}** ms")
    row(f"4. single-file latency at idle, p50 / p95 / p99 ({cfg['latency_files']} files)", cells)
    cells = []
    for c in cols:
        m = _get(r, "memory", c)
        cells.append(NA if c == LIMIT or not m else f"{m['rss_mb']:.1f} MB (peak {m['hwm_mb']:.1f})")
    row(f"5. resident memory (VmRSS) watching {cfg['mem_dirs']:,} dirs / {cfg['mem_files']:,} files", cells)
    for size in cfg["sizes"]:
        row(f"6. cold start, {size:,} files", [_cold_cell(r, c, size) if c != SHELL else NA for c in cols])
    return rows


def chart(r: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    colors = {LIMIT: "#555555", NAIVE: "#d62728", DAEMON: "#1f77b4"}
    for c in (LIMIT, NAIVE, DAEMON):
        pts = sorted((int(k), v) for k, v in r["cold"].get(c, {}).items() if v.get("seconds"))
        if not pts:
            continue
        meas = [(n, v["seconds"]) for n, v in pts if v.get("measured", True)]
        extra = [(n, v["seconds"]) for n, v in pts if not v.get("measured", True)]
        if meas:
            ax.plot(*zip(*meas), "o-", color=colors[c], label=c)
            ax2.plot([n for n, _ in meas], [s / n * 1e6 for n, s in meas], "o-", color=colors[c], label=c)
        if extra:
            line = meas[-1:] + extra
            ax.plot(*zip(*line), "o--", color=colors[c], alpha=0.5, mfc="none",
                    label=f"{c} (extrapolated)")
    for a in (ax, ax2):
        a.set_xscale("log")
        a.set_xlabel("files in the tree (100 per directory)")
        a.grid(True, which="both", alpha=0.3)
        a.legend()
    ax.set_yscale("log")
    ax.set_ylabel("cold start: seconds until every row is in")
    ax2.set_ylabel("microseconds per file")
    ax2.set_yscale("log")
    ax.set_title("Cold start time vs tree size")
    ax2.set_title("Cost per file (flat = linear)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(r: dict) -> str:
    m, cfg = r["machine"], r["config"]
    main = cfg["main"]
    L = ["# Performance", "",
         f"Measured by `bench/` on {r['date']}, in one run on one machine: every figure below comes "
         "from the same run, each contender on the same tree with a fresh database.", "",
         "Contenders:", "",
         "- **limit**: `os.scandir` walk, then PyMySQL `executemany` of 1,000 rows a commit (one "
         "multi-row INSERT each): what MariaDB and the file system allow, with no service logic.",
         "- **naive**: a straightforward Python service: per file a SELECT by path, an INSERT, a "
         "COMMIT (`os.walk` at start, a pyinotify IN_CLOSE_WRITE handler live).",
         "- **shell**: `inotifywait -m -r -e close_write,moved_to --format '%w%f'` piped to a bash "
         "`while read` loop running the `mysql` client per file.",
         "- **vfs-notifier**: the real daemon, `/usr/bin/python3 -m vfs_notifier run`, configured "
         "by environment variables, default logging on (info, a line per file).", "",
         "## Results side by side", ""]
    L += table(r)
    extrapolated = sorted(n for n, e in r["cold"].get(NAIVE, {}).items() if not e.get("measured", True))
    L.append("")
    if extrapolated:
        frm = r["cold"][NAIVE][extrapolated[0]]["from"]
        L.append(f"¹ naive cold starts of {', '.join(f'{n:,}' for n in extrapolated)} files are "
                 f"extrapolated, not measured: its measured time per file at {frm:,} files times the "
                 "file count (one round trip and one durable commit per file: its cost is linear).")
    if _get(r, "warm", NAIVE, "measured") is False:
        L.append(f"² naive warm restart measured on {_get(r, 'warm', NAIVE, 'measured_files'):,} files "
                 f"({_s(_get(r, 'warm', NAIVE, 'measured_s'))} s) and scaled linearly to {main:,}.")
    L += [f"Limit and vfs-notifier cold starts and warm restarts: the median of {cfg.get('repeat', 1)} "
          "runs each, the two taking turns; every cold start on a fresh database. "
          f"Bursts: {', '.join(f'{c} {n:,} files' for c, n in cfg['burst'].items())}, "
          f"the median of {cfg.get('burst_repeat', 1)} bursts each (the naive "
          "and shell bursts are smaller so that their backlog stays below the kernel's inotify "
          "queue and the run stays short; their rate is what they sustain while behind).",
          ""]
    L += ["## Goals (issue 4), as measured", "", "| goal | measured | verdict |", "|---|---|---|"]
    L += [f"| {g} | {meas} | {v} |" for g, meas, v in goals(r)]
    L += ["", "## Scaling", "", "![cold start time vs files](performance.png)", ""]
    if r.get("findings"):
        L += ["## What stands in the way of the goals still failed", "", r["findings"].strip(), ""]
    if r.get("notes"):
        L += ["## Notes from this run", ""] + [f"- {n}" for n in r["notes"]] + [""]
    L += ["## Machine and versions", "",
          f"- {m['cpus']} CPUs: {m['cpu']}; {m['ram_gb']} GB RAM; kernel {m['kernel']}; {m['os']}",
          f"- file system of the trees and the database: {m['filesystem']}",
          f"- Python {m['python']}; PyMySQL {m['pymysql']}; pyinotify {m['pyinotify']}",
          f"- MariaDB server {m['mariadb']} (throwaway, defaults: InnoDB, "
          "innodb_flush_log_at_trx_commit=1, binary log off), over TCP on 127.0.0.1",
          f"- mysql client: {m['mysql_client']}; inotify-tools {m['inotify_tools']}; {m['bash']}",
          f"- vfs-notifier: {m['vfs_notifier']}, measured from the {m.get('daemon_source', 'working tree')}"
          f" (checkout {m['commit']})",
          f"- inotify limits: {m['inotify_limits']}",
          f"- load average (1 min) at the start and the end of the run: "
          f"{', '.join(str(x) for x in m.get('loadavg', []))} (the machine is shared; "
          "other work running at the same time moves single figures)", "",
          "## How it is measured", "",
          "- Times are wall clock from the moment the harness starts a contender's process to the "
          "moment a separate connection sees the last row (polled every 20 ms by counting only rows "
          "above the highest id already seen, so polling stays cheap). Interpreter start-up counts "
          "for every contender alike.",
          "- Warm restart of vfs-notifier: from its start until its `STATUS=` says the reconciling "
          "walk is over (read from a NOTIFY_SOCKET the harness binds); the limit is a bare "
          "`os.scandir` walk plus one `SELECT des_video_path FROM videos`.",
          "- Burst: a separate writer process creates the files as fast as it can; throughput = "
          "files / (last row seen − writer's first file); lag = last row seen − writer's last close.",
          "- Latency: the harness closes one file, records `time.time()`, then polls for the row "
          "in a tight loop (0.2 ms sleeps) on its own connection; 50 ms idle between files, 3 s "
          "idle before the first. For reference, the limit column is one autocommitted single-row "
          "INSERT by PyMySQL from the harness itself, from just before the call to the row seen "
          "(the harness waits in the call instead of polling, so it is not a strict floor). "
          f"One poll costs about {_s(r.get('poll_rtt_ms'), 2)} ms, the resolution of these figures.",
          "- Memory: VmRSS (and the peak, VmHWM) from /proc/PID/status: vfs-notifier after it has "
          "registered the whole tree from an empty table and idled 2 s; the naive service and the "
          "shell once their watches are in place (they do not scan); for the shell, summed over "
          "inotifywait and bash.",
          "- Each contender's row count and distinct paths are checked after every run, and after "
          "each cold start 1,000 random rows are compared with the row their path must have "
          "(main_dir, status, percent-encoded URL): "
          + ("all matched." if not r.get("mismatches") else
             "mismatches: " + "; ".join(r["mismatches"])),
          "- The shell loop escapes quotes for SQL (the common version without it stops at the first "
          "apostrophe) but does not percent-encode URLs.",
          "", "## Reproduce", "", "```", COMMAND, "```", "",
          f"This run: `{r.get('command', 'scripts/bench')}`, {r.get('runtime_s', 0) / 60:.1f} minutes. "
          "`--daemon-rev REV` measures vfs_notifier/ as committed at REV rather than the working "
          "tree.", "",
          "`scripts/bench` installs what it needs as root (mariadb-server, inotify-tools, "
          "python3-matplotlib for the chart only, the service's own Debian packages), starts a "
          "throwaway MariaDB on a free loopback port under a temporary directory, runs every "
          "scenario and rewrites this file and `performance.png`. `scripts/bench --quick` runs a "
          "tenth of the sizes to check the harness; `--only limit,vfs-notifier` picks contenders.",
          ""]
    return "\n".join(L)


def check(r: dict) -> list[str]:
    """Every run where rows or distinct paths differ from the files written."""
    bad = []
    for c, sizes in r["cold"].items():
        for size, e in sizes.items():
            if e.get("measured", True) and (e.get("rows") != int(size) or e.get("distinct") != int(size)):
                bad.append(f"cold {c} {size}: {e.get('rows')} rows, {e.get('distinct')} distinct")
            if e.get("wrong_rows"):
                bad.append(f"cold {c} {size}: {e['wrong_rows']} of 1,000 sampled rows differ from "
                           "the expected main_dir/path/status/URL")
    for c, e in r["burst"].items():
        if "files" in e and (e.get("rows") != e["files"] or e.get("distinct") != e["files"]):
            bad.append(f"burst {c}: {e.get('rows')} rows, {e.get('distinct')} distinct of {e['files']}")
    return bad


FINDINGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "findings.md")


def stress_only(r: dict) -> str:
    """The report of a run of the stress scenarios alone (no contenders of issue 4)."""
    m = r["machine"]
    L = ["# Performance: the loop under stress", "",
         f"Measured by `bench/` on {r['date']}, in one run on one machine.", ""]
    L += stress_report.markdown(r["stress"])
    L += ["## Machine and versions", "",
          f"- {m['cpus']} CPUs: {m['cpu']}; {m['ram_gb']} GB RAM; kernel {m['kernel']}; {m['os']}",
          f"- file system: {m['filesystem']}; Python {m['python']}; MariaDB {m['mariadb']}",
          f"- checkout {m['commit']}; inotify limits {m['inotify_limits']}",
          f"- load average (1 min) at the start and the end: "
          f"{', '.join(str(x) for x in m.get('loadavg', []))} (shared machine)", "",
          f"This run: `{r.get('command', 'scripts/bench')}`, {r.get('runtime_s', 0) / 60:.1f} minutes.",
          ""]
    return "\n".join(L)


def write(r: dict, docs: str) -> None:
    os.makedirs(docs, exist_ok=True)
    if not r.get("classic", True):
        r["mismatches"] = []
        with open(os.path.join(docs, "PERFORMANCE.md"), "w") as f:
            f.write(stress_only(r))
        return
    r["mismatches"] = check(r)
    r.pop("findings", None)
    if any(v.startswith("**FAIL") for _, _, v in goals(r)) and os.path.exists(FINDINGS):
        with open(FINDINGS) as f:   # written by hand from `python3 -m bench.profile` output
            r["findings"] = f.read()
    text = markdown(r)
    if "stress" in r:   # before "## Machine and versions"
        head, sep, tail = text.partition("## Machine and versions")
        text = head + "\n".join(stress_report.markdown(r["stress"])) + "\n" + sep + tail
    text = _keep_galera(os.path.join(docs, "PERFORMANCE.md"), text)
    head, sep, tail = text.partition("## Machine and versions")
    text = head + kept_section(os.path.join(docs, "PERFORMANCE.md")) + sep + tail
    with open(os.path.join(docs, "PERFORMANCE.md"), "w") as f:
        f.write(text)
    chart(r, os.path.join(docs, "performance.png"))


def _keep_galera(path: str, text: str) -> str:
    """The section `python3 -m bench.galera` wrote stays: this run did not measure it."""
    try:
        with open(path) as f:
            old = f.read()
    except OSError:
        return text
    if GALERA_BEGIN not in old or GALERA_END not in old:
        return text
    section = GALERA_BEGIN + old.partition(GALERA_BEGIN)[2].partition(GALERA_END)[0] + GALERA_END + "\n"
    head, sep, tail = text.partition("## Machine and versions")
    return head + section + "\n" + sep + tail if sep else text + "\n" + section


KEPT = "## Warm restart against its floor"


def kept_section(path: str) -> str:
    """The section `python3 -m bench.warm` fills (pasted from its output), carried over from
    the report this run replaces: its own run takes long (a million files), so it is not
    part of this one."""
    try:
        with open(path) as f:
            old = f.read()
    except OSError:
        return ""
    at = old.find(KEPT)
    if at < 0:
        return ""
    ends = [e for e in (old.find("\n## ", at + len(KEPT)), old.find("\n<!-- ", at)) if e >= 0]
    return old[at:min(ends) + 1] if ends else old[at:]


def _int_keys(r: dict) -> dict:
    """JSON turns the size keys into strings; the report wants them back as ints."""
    r["cold"] = {c: {int(k): v for k, v in d.items()} for c, d in r["cold"].items()}
    return r


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        res = json.load(f)
        res = _int_keys(res) if res.get("classic", True) else res
    write(res, sys.argv[2] if len(sys.argv) > 2 else "docs")
