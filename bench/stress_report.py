"""The goals of issues 9, 10 and 14, as measured by bench/stress.py, side by side per variant.

`goals(stress)` gives (goal, {variant: (measured, verdict)}) rows for the console and for the
section `markdown(stress)` adds to docs/PERFORMANCE.md.
"""
from __future__ import annotations

NA = "—"
MAX_TURN_MS = 100.0
MAX_LATENCY_MS = 1000.0
MAX_RSS_MB = 48.0
FLAT_MB = 4.0        # 50,000 queued files at the README's 80 B a file
MAX_LAG_S = 0.5
MAX_COLD_RATIO = 1.3


def _s(x: float | None, digits: int = 2) -> str:
    return NA if x is None else f"{x:,.{digits}f}"


def _v(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def turn(res: dict) -> tuple[str, str]:
    """The longest loop turn from the longest gap G between watchdog pings sent every I ms by a
    responsive loop: a turn never spans more than one gap, and a ping ends every turn once one is
    due, so the longest turn lies between G - I and G."""
    gap, interval = res.get("longest_gap_ms"), res.get("ping_interval_ms", 50.0)
    if gap is None:
        return "no watchdog pings seen", "FAIL"
    lo = max(0.0, gap - interval)
    if res.get("gap_open_ended"):
        return (f"≥ {lo:,.0f} ms: no ping for {gap:,.0f} ms until the end of the scenario "
                "(the turn had not ended)"), "FAIL" if lo >= MAX_TURN_MS else "UNSURE"
    text = f"≤ {gap:,.0f} ms (longest ping gap; the turn is {lo:,.0f}-{gap:,.0f} ms)"
    if gap < MAX_TURN_MS:
        return text, "PASS"
    if lo >= MAX_TURN_MS:
        return text, "FAIL"
    return text + "; rerun with --watchdog-usec 20000 to decide", "UNSURE"


def latency(lat: dict | None) -> tuple[str, str]:
    if not lat:
        return NA, "n/a"
    missed = lat.get("missed", 0)
    if "p99_ms" not in lat:
        return f"no file registered ({missed} missed)", "FAIL" if missed else "n/a"
    text = (f"p99 {lat['p99_ms']:,.0f} ms (p50 {lat['p50_ms']:,.0f}, max {lat['max_ms']:,.0f}; "
            f"{lat['files']} files)" + (f"; {missed} never registered" if missed else ""))
    return text, _v(lat["p99_ms"] < MAX_LATENCY_MS and not missed)


def _error(res: dict | None) -> tuple[str, str] | None:
    if res is None:
        return NA, "n/a"
    if "error" in res:
        return res["error"], "FAIL"
    return None


def goals(st: dict) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    keys = [v["key"] for v in st["variants"]]
    cfg = st["config"]
    rows: list[tuple[str, dict[str, tuple[str, str]]]] = []

    def add(goal: str, scenario: str, fn) -> None:
        if scenario not in st:
            return
        cells = {}
        for k in keys:
            res = st[scenario].get(k)
            cells[k] = _error(res) or fn(res)
        rows.append((goal, cells))

    n = f"{cfg['rmrf_dirs']:,}"
    add(f"rm -rf of a {n}-directory tree: longest loop turn < {MAX_TURN_MS:.0f} ms", "rmrf", turn)
    add(f"rm -rf of a {n}-directory tree: new-file latency p99 < 1 s", "rmrf",
        lambda r: latency(r.get("latency")))
    n = f"{cfg['rescan_files']:,}"
    add(f"rescan of a {n}-file registered tree: longest loop turn < {MAX_TURN_MS:.0f} ms", "rescan",
        lambda r: turn(r) if r.get("rescans_seen") else (turn(r)[0] + "; no rescan seen", "FAIL"))
    add(f"rescan of a {n}-file registered tree: new-file latency p99 < 1 s (files written "
        "while it ran)", "rescan",
        lambda r: latency(r.get("latency")) if r.get("rescans_seen") else ("no rescan seen", "FAIL"))
    n = f"{cfg['outage_files']:,}"

    def flat(r: dict) -> tuple[str, str]:
        peak, growth = r.get("rss_peak_outage_mb"), r.get("growth_mb")
        return (f"peak {_s(peak, 1)} MB, +{_s(growth, 1)} MB over {_s(r.get('rss_before_mb'), 1)} MB",
                _v(None if peak is None or growth is None
                   else peak < MAX_RSS_MB and growth < FLAT_MB))

    add(f"{n} files during a database outage: VmRSS < {MAX_RSS_MB:.0f} MB and flat "
        f"(grows < {FLAT_MB:.0f} MB)", "outage", flat)
    add(f"{n} files during a database outage: all registered after it returns", "outage",
        lambda r: (f"{r.get('rows', 0):,} rows ({r.get('distinct', 0):,} distinct) "
                   f"{_s(r.get('caught_up_s'))} s after MariaDB answered",
                   _v(r.get("rows") == r["files"] and r.get("distinct") == r["files"]
                      and r.get("caught_up_s") is not None)))
    def newdir(r: dict) -> tuple[str, str]:
        # Every burst must meet it: a settle wait shows only in the bursts where the walk of
        # the new directory met files younger than the settle time, so a median would hide it.
        writer = [x["writer_files_per_s"] for x in r["runs"]]
        lags = [x.get("lag_s") for x in r["runs"]]
        if not writer:
            return NA, "n/a"
        text = (f"worst {_s(max(lags), 3) if None not in lags else 'never caught up'} s, median "
                f"{_s(r.get('lag_s'), 3)} s (runs {', '.join(_s(x, 3) for x in lags)}; writer "
                f"{min(writer):,.0f}-{max(writer):,.0f} files/s)")
        if None in lags:
            return text, "FAIL"
        return text, _v(max(lags) < MAX_LAG_S)

    for scenario, size in (("burst-newdir", "newdir_files"), ("burst-newdir-short", "newdir_short")):
        add(f"{cfg[size]:,}-file burst into a brand-new directory: lag < {MAX_LAG_S} s, every "
            f"burst", scenario,
            newdir)
    if "check" in st:
        limit = st["check"].get("limit", {}).get("seconds")
        kept = st["check"].get("limit-kept", {}).get("seconds")
        cells = {}
        for k in keys:
            r = st["check"].get(k)
            if not r:
                cells[k] = (NA, "n/a")
                continue
            cost = r.get("cost")
            cells[k] = (f"on {_s(r['on_s'])} s, off {_s(r['off_s'])} s (medians); the check costs "
                        f"{'—' if cost is None else f'{cost:+.0%}'} (fastest runs: "
                        f"{_s(r.get('best_on_s'))} vs {_s(r.get('best_off_s'))} s); limit "
                        f"{_s(limit)} s (with the companion table 1.1.0 keeps: {_s(kept)} s, "
                        f"{_s(kept / limit if kept and limit else None)} × limit); on = "
                        f"{_s(r.get('ratio_limit'))} × limit, "
                        f"{_s(r['on_s'] / kept if r.get('on_s') and kept else None)} × the limit "
                        f"with the companion table",
                        _v(None if r.get("ratio_limit") is None
                           else r["ratio_limit"] <= MAX_COLD_RATIO))
        rows.append((f"cold start of {cfg['check_files']:,} files with the structure check on "
                     f"≤ {MAX_COLD_RATIO} × limit", cells))

    def mem(phase: str):
        def cell(r: dict) -> tuple[str, str]:
            p = r.get(phase)
            if not p:
                return NA, "n/a"
            return (f"VmRSS {p['rss_mb']:.1f} MB (peak {p['hwm_mb']:.1f})",
                    _v(p["rss_mb"] <= MAX_RSS_MB))
        return cell

    n = f"{cfg['mem_files']:,}"
    add(f"≤ {MAX_RSS_MB:.0f} MB resident at {n} files, after the cold start", "memory", mem("cold"))
    add(f"≤ {MAX_RSS_MB:.0f} MB resident at {n} files, after a restart (versions remembered)",
        "memory", mem("restart"))
    return rows


def console(st: dict) -> list[str]:
    """One line per goal and variant, for the end of a run."""
    labels = {v["key"]: v["label"] for v in st["variants"]}
    out = []
    for goal, cells in goals(st):
        for k, (measured, verdict) in cells.items():
            out.append(f"{verdict:6s} [{k}: {labels[k]}] {goal}: {measured}")
    return out


def markdown(st: dict) -> list[str]:
    variants = st["variants"]
    head = " | ".join(f"{v['key']}: {v['label']}" for v in variants)
    L = ["## The loop under stress, side by side (issues 9, 10, 14)", "",
         "Each scenario ran for every variant in the same run, one daemon at a time, each on a "
         "fresh database; every file written is a real clip (`bench/media.py`, made by ffmpeg).",
         "", f"| goal | {head} |", "|---|" + "---|" * len(variants)]
    for goal, cells in goals(st):
        L.append(f"| {goal} | " + " | ".join(
            f"{cells[v['key']][0]} **{cells[v['key']][1]}**" for v in variants) + " |")
    L.append("")
    details = []
    for v in variants:
        k = v["key"]
        r = st.get("rmrf", {}).get(k, {})
        if "rm_s" in r:
            details.append(f"- rm -rf, {k}: {r['dirs']:,} directories, rm took {r['rm_s']:.1f} s; "
                           + (f"the daemon took new files and was quiet again "
                              f"{_s(r.get('caught_up_s'))} s after it; " if r.get("caught_up_s")
                              is not None else "the daemon had not caught up when the scenario "
                              "gave up; ")
                           + f"{r.get('rows_left', 0):,} rows of the removed tree left then "
                           f"(withdrawal policy); {r.get('pings', 0)} watchdog pings during it.")
    for v in variants:
        k = v["key"]
        r = st.get("rescan", {}).get(k, {})
        if "rescans_seen" in r:
            details.append(f"- rescan, {k}: every {r['interval_s']:g} s; rescans seen lasting "
                           f"{', '.join(f'{x:.2f} s' for x in r['rescans_seen']) or 'none'}; "
                           f"latency over the whole {r['window_s']:.0f} s window: "
                           f"{latency(r.get('latency_all'))[0]}.")
    for v in variants:
        k = v["key"]
        r = st.get("outage", {}).get(k, {})
        if "rss_series" in r:
            ev = r["events"]
            series = ", ".join(f"{t:g} s {mb:g}" for t, mb in r["rss_series"][::4])
            details.append(f"- outage, {k}: MariaDB stopped at 0 s, files written "
                           f"{ev['writer_start']:.1f}-{ev['writer_end']:.1f} s, MariaDB answered "
                           f"again at {ev['up']:.1f} s; VmRSS (MB) over time: {series}.")
    for v in variants:
        k = v["key"]
        r = st.get("memory", {}).get(k, {})
        if "cold" in r and "restart" in r:
            details.append(f"- memory, {k}: {r['files']:,} files in {r['dirs']:,} directories; "
                           f"cold start {_s(r['cold']['seconds'])} s, restart ready in "
                           f"{_s(r['restart']['ready_s'])} s.")
    if details:
        L += ["Details:", ""] + details + [""]
    L += ["How: the daemon runs with `NOTIFY_SOCKET` pointing at the harness and `WATCHDOG_USEC="
          f"{st['config']['watchdog_usec']}`, so a responsive loop pings every "
          f"{st['config']['watchdog_usec'] / 2000:.0f} ms; the kernel timestamps each ping "
          "(SO_TIMESTAMPNS) and the longest gap between two bounds the longest turn. Latency: a "
          f"new clip every {st['config']['probe_gap'] * 1000:.0f} ms (open loop), timed until a "
          "separate connection sees its row. A rescan is found black-box by the directory opens of "
          "its walk (inotify IN_OPEN on the tree's directories), extended by the busy CPU stretch "
          "that follows it; only files written during one count for its latency. Memory: VmRSS "
          "from /proc, sampled every 0.25 s. Outage: MariaDB stopped cleanly and started again "
          "on the same data and port.", ""]
    if st.get("notes"):
        L += [f"- {n}" for n in st["notes"]] + [""]
    return L
