"""The Markdown table of a benchmark run, with each target checked."""

from __future__ import annotations

# The same line as the test suite's (tests/browser/test_widget_budget.py): 12 KiB.
WIDGET_BUDGET_BYTES = 12 * 1024


def _at(mapping: dict, size: int) -> dict:
    """Sizes are ints in a live run and strings once read back from JSON."""
    return mapping[size] if size in mapping else mapping[str(size)]


def _n(value: float, digits: int = 1) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _range(stat: dict, unit: str = "", digits: int = 1) -> str:
    if stat["min"] == stat["max"]:
        return f"{_n(stat['median'], digits)}{unit}"
    return f"{_n(stat['median'], digits)}{unit} [{_n(stat['min'], digits)} – {_n(stat['max'], digits)}]"


def _pct(stat: dict) -> str:
    return f"{stat['median']:.0%} [{stat['min']:.0%} – {stat['max']:.0%}]"


def _times(ratio: float) -> str:
    return f"{ratio:.2g}×" if ratio < 10 else f"{ratio:,.0f}×"


def _mark(ok: bool | None) -> str:
    return "—" if ok is None else ("✅ met" if ok else "❌ missed")


def targets(results: dict) -> dict[str, bool | None]:
    turns, history, alts = results["turns"], results["history"], results["alternatives"]
    big = 10_000
    ours_turn = _at(history, big)["turn"]["p50_ms"]["median"]
    ours_page = _at(history, big)["page"]["p50_ms"]["median"]
    lc = _at(alts, big)
    widget = results["widget"]
    browser = widget.get("browser")
    writers = results["writers"]
    return {
        "share": turns["turn_share_of_ceiling"]["median"] >= 0.20,
        "latency": turns["turn_1"]["p50_ms"]["median"] <= 5.0,
        "flat_turn": history["turn_ratio_10000_to_10"]["median"] <= 1.3,
        "flat_page": history["page_ratio_10000_to_10"]["median"] <= 1.3,
        "langchain_load": lc["langchain_load"]["p50_ms"]["median"] / ours_page >= 50,
        "langchain_turn": lc["langchain_turn"]["p50_ms"]["median"] / ours_turn >= 50,
        "writers": writers["ours_kept"] == writers["expected"] and writers["ours_seq_unbroken"],
        "widget_bytes": widget.get("gzip_bytes", 10**9) <= WIDGET_BUDGET_BYTES if widget.get("files") else None,
        "widget_third_party": (not browser["third_party"]) if browser else None,
        "streaming": results["streaming"]["p50_ms"]["median"] <= 10.0,
    }


def markdown(results: dict) -> str:
    t = targets(results)
    turns, history, alts, writers = results["turns"], results["history"], results["alternatives"], results["writers"]
    widget, streaming = results["widget"], results["streaming"]
    m, v = results["machine"], results["versions"]
    repeats = results["config"]["repeats"]
    rows: list[tuple[str, str, str, str, str]] = []

    def row(item, measure, value, target="", ok=None):
        rows.append((item, measure, value, target, _mark(ok) if target else ""))

    row("1", "turns/s, 16 clients (sessions of 50 messages)", _range(turns["turn_16"]["rate"], "", 0))
    row(
        "1",
        "turn latency, 16 clients: p50 / p99",
        f"{_range(turns['turn_16']['p50_ms'], ' ms')} / {_range(turns['turn_16']['p99_ms'], ' ms')}",
    )
    row(
        "1",
        "turn latency, 1 client: p50 / p99",
        f"{_range(turns['turn_1']['p50_ms'], ' ms', 2)} / {_range(turns['turn_1']['p99_ms'], ' ms')}",
        "p50 ≤ 5 ms",
        t["latency"],
    )
    row("2", "ceiling: constant DRF view, 16 clients, req/s", _range(turns["ceiling_16"]["rate"], "", 0))
    row(
        "2",
        "ceiling: constant async `JsonResponse`, 16 clients, req/s",
        _range(turns["ceiling_plain_16"]["rate"], "", 0),
    )
    row(
        "2",
        "ceiling latency, 1 client: p50",
        _range(turns["ceiling_1"]["p50_ms"], " ms", 2),
    )
    row("2", "turn rate ÷ DRF ceiling rate", _pct(turns["turn_share_of_ceiling"]), "≥ 20%", t["share"])
    row("2", "turn rate ÷ plain `JsonResponse` rate", _pct(turns["turn_share_of_plain_ceiling"]))
    for kind, label in (("turn", "turn"), ("page", "`GET` latest 50")):
        values = " / ".join(_n(_at(history, s)[kind]["p50_ms"]["median"], 2) for s in (10, 1_000, 10_000))
        row("3", f"{label} p50 at 10 / 1,000 / 10,000 messages, ms (1 client)", values)
        row(
            "3",
            f"{label}: 10,000 ÷ 10 messages",
            _range(history[f"{kind}_ratio_10000_to_10"], "×", 2),
            "≤ 1.3",
            t[f"flat_{kind}"],
        )
    for name, label, ours_kind in (
        ("langchain_load", "LangChain `PostgresChatMessageHistory.messages`", "page"),
        ("langchain_turn", "LangChain turn (load all + append 2)", "turn"),
        ("guide_load", "guide's Redis JSON list: load", "page"),
        ("guide_turn", "guide's Redis JSON list: turn (load + 2 × get/append/set)", "turn"),
    ):
        times = [_at(alts, s)[name]["p50_ms"]["median"] for s in (1_000, 10_000)]
        ours = [_at(history, s)[ours_kind]["p50_ms"]["median"] for s in (1_000, 10_000)]
        ratios = " / ".join(_times(a / b) for a, b in zip(times, ours, strict=True))
        row("4", f"{label}, p50 at 1,000 / 10,000, ms", " / ".join(_n(x, 2) for x in times))
        versus = "our page read" if ours_kind == "page" else "our turn"
        if name.startswith("langchain"):
            row("4", f"… ÷ {versus} at 1,000 / 10,000", ratios, "≥ 50× at 10,000", t[name])
        else:
            row("4", f"… ÷ {versus} at 1,000 / 10,000", ratios)
    row(
        "4",
        f"{writers['expected'] // 100} writers × 100 appends to one session: kept",
        f"ours {writers['ours_kept']}/{writers['expected']}"
        f"{' (seq unbroken)' if writers['ours_seq_unbroken'] else ' (seq BROKEN)'}, "
        f"guide {writers['guide_kept']}/{writers['expected']}, "
        f"LangChain {writers['langchain_kept']}/{writers['expected']}",
        "all kept (ours)",
        t["writers"],
    )
    browser = widget.get("browser")
    if widget.get("files"):
        counted = ", ".join(widget["counted_files"])
        row(
            "5",
            f"widget JS + CSS before the launcher shows, gzip -9 ({counted})",
            f"{widget['gzip_bytes']:,} bytes",
            "≤ 12 KiB (12,288 bytes)",
            t["widget_bytes"],
        )
    else:
        row("5", "widget JS + CSS", widget.get("error", "no files"), "≤ 12 KiB (12,288 bytes)", None)
    if browser:
        row("5", "requests before the launcher shows (Chromium)", f"{browser['requests_before_launcher']}")
        row(
            "5",
            "requests to third parties",
            f"{len(browser['third_party'])}",
            "none",
            t["widget_third_party"],
        )
    else:
        row("5", "requests before the launcher shows", f"not measured: {widget.get('browser_error')}")
    for served in widget.get("served", []):
        row(
            "5",
            f"`{served['path']}` as served (gzip asked)",
            f"{served['content_encoding'] or 'identity'}, {served['bytes']:,} bytes, "
            f"`Cache-Control: {served['cache_control']}`{', ETag' if served['etag'] else ''}",
        )
    row(
        "6",
        "streaming overhead: upstream's first chunk → client's first delta, p50 / p99",
        f"{_range(streaming['p50_ms'], ' ms', 2)} / {_range(streaming['p99_ms'], ' ms', 2)}",
        "p50 ≤ 10 ms",
        t["streaming"],
    )

    visitors = (
        [
            "",
            "Item 7, visitors waiting at once (one worker; medians over repeats):",
            "",
            visitors_markdown(results["visitors"]),
        ]
        if results.get("visitors")
        else []
    )
    retrieval = (
        ["", "Item 8, retrieval on the Django docs fixture:", "", retrieval_markdown(results["retrieval"])]
        if results.get("retrieval")
        else []
    )
    lines = [
        f"Run {results['started_at']} ({results['mode']}, {results['duration_s']} s). "
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {v['python']}, "
        f"Django {v['django']}, uvicorn {v['uvicorn']}, PostgreSQL {v['postgresql']}, Redis {v['redis']}; "
        f"load average {results['load_average_at_start']} at start, {results['load_average_at_end']} at end.",
        "",
        f"Server: `{results['server_command']}` with WEB_CONCURRENCY={results['server_workers']}, DEBUG off, "
        f"psycopg pool of {results['database_pool_max_size']} per worker, the offline responder; "
        "load from wrk (items 1–2) and a one-connection raw-socket client (items 3–4, 6) on the same two cores. "
        f"Each figure: median over {repeats} repeat{'s' if repeats != 1 else ''} [min – max]."
        + (
            f" **Settings: `{results['settings_module']}`, a candidate change, not what is deployed.**"
            if results.get("settings_module", "bench.settings") != "bench.settings"
            else ""
        ),
        "",
        "| # | measure | result | target | |",
        "|---|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows),
        *visitors,
        *retrieval,
        "",
    ]
    return "\n".join(lines)


def _median(runs: list[dict], key: str) -> float | None:
    values = sorted(run[key] for run in runs if run.get(key) is not None)
    return values[len(values) // 2] if values else None


def visitors_targets(visitors: dict) -> dict[str, bool | None]:
    sizes = visitors["sizes"]
    thousand = _at(sizes, 1_000) if "1000" in sizes or 1_000 in sizes else None
    most = _at(sizes, 3_000) if "3000" in sizes or 3_000 in sizes else None
    out: dict[str, bool | None] = {"all_done": None, "makespan": None, "first_p99": None, "rss": None, "refused": None}
    if thousand:
        ours, relay = thousand["ours"], thousand["relay"]
        out["all_done"] = all(r["completed"] == r["visitors"] == r["turns_stored"] for r in ours)
        out["makespan"] = _median(ours, "makespan_s") <= 1.25 * _median(relay, "makespan_s")
        out["first_p99"] = _median(ours, "first_delta_p99_ms") <= 1.25 * _median(relay, "first_delta_p99_ms")
        out["rss"] = _median(ours, "rss_per_answer_kib") <= 100
    if most:
        runs = most["ours"]
        out["refused"] = all(
            r["failed"] == 0
            and r["half_written"] == 0
            and r["turns_stored"] == r["completed"]
            and (r["refused"] == 0 or r["refused_p99_ms"] <= 100)
            for r in runs
        )
    return out


def visitors_markdown(visitors: dict) -> str:
    """Item 7's table: each size, ours against the bare relay (medians over repeats)."""
    t = visitors_targets(visitors)

    def cell(runs, key, unit="", digits=1):
        value = _median(runs, key)
        return "—" if value is None else f"{_n(value, digits)}{unit}"

    lines = [
        "| visitors at once | server | completed | refused (503) | makespan | first delta p50 / p99 "
        "| refused in, p99 | turns stored | half-written | peak RSS | RSS per answer |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, runs in visitors["sizes"].items():
        for name in ("relay", "ours"):
            r = runs[name]
            stored = cell(r, "turns_stored", digits=0) if name == "ours" else "—"
            half = cell(r, "half_written", digits=0) if name == "ours" else "—"
            lines.append(
                f"| {int(size):,} | {'bare relay' if name == 'relay' else 'this project'} "
                f"| {cell(r, 'completed', digits=0)} | {cell(r, 'refused', digits=0)} "
                f"| {cell(r, 'makespan_s', ' s', 2)} "
                f"| {cell(r, 'first_delta_p50_ms', ' ms')} / {cell(r, 'first_delta_p99_ms', ' ms')} "
                f"| {cell(r, 'refused_p99_ms', ' ms')} | {stored} | {half} "
                f"| {cell(r, 'rss_peak_mib', ' MiB')} | {cell(r, 'rss_per_answer_kib', ' KiB')} |"
            )
    lines += [
        "",
        "| target | |",
        "|---|---|",
        f"| 1,000 at once: all complete and stored | {_mark(t['all_done'])} |",
        f"| 1,000 at once: makespan ≤ 1.25 × the relay's | {_mark(t['makespan'])} |",
        f"| 1,000 at once: first-delta p99 ≤ 1.25 × the relay's | {_mark(t['first_p99'])} |",
        f"| 1,000 at once: ≤ 100 KiB RSS per answer in flight | {_mark(t['rss'])} |",
        f"| 3,000 at once: nothing lost or half-written, the excess refused within 100 ms | {_mark(t['refused'])} |",
        "",
    ]
    return "\n".join(lines)


def run_header(results: dict) -> str:
    m, v = results["machine"], results["versions"]
    return (
        f"Run {results['started_at']} ({results['mode']}, {results['duration_s']} s). "
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {v['python']}, "
        f"Django {v['django']}, PostgreSQL {v['postgresql']}; "
        f"load average {results['load_average_at_start']} at start, {results['load_average_at_end']} at end."
    )


def retrieval_targets(retrieval: dict) -> dict[str, bool | None]:
    pg, lite = retrieval["postgresql"], retrieval["sqlite"]
    quality = [pg["quality"], lite["quality"]]
    big = pg["scale"]["sizes"].get("100000") or pg["scale"]["sizes"].get(100_000)
    turn = (_at(pg["scale"]["sizes"], 10_000).get("turn") or {}).get("model")
    return {
        "recall": all(q["ours"]["recall_at_5"] >= 0.90 for q in quality),
        "refusal": all(q["ours"]["refusal_accuracy"] >= 0.85 for q in quality),
        "versus_bm25s": all(q["ours"]["recall_at_5"] >= q["bm25s"]["recall_at_5"] for q in quality),
        "p50_100k": big["retrieve"]["p50_ms"] <= 25 if big else None,
        # A turn that does not call retrieve yet measures nothing about it.
        "turn": turn["added_p50_ms"] <= 5
        if turn and turn["turn_uses_kb"] and not any(turn["offline"].values())
        else None,
        "resync": all(
            q[key]["chunks_written"] == 0
            for q in quality
            for key in ("resync_conditional", "resync_unconditional")
            if key in q
        ),
    }


def retrieval_markdown(retrieval: dict) -> str:
    """Item 8's tables: quality against the anchors, cost at scale, ingestion and re-sync."""
    t = retrieval_targets(retrieval)
    pg, lite, fixture = retrieval["postgresql"], retrieval["sqlite"], retrieval["corpus"]
    lines = [
        f"Fixture: {fixture['pages']} pages of the Django 3.2.25 docs ({pg['quality']['chunks']:,} chunks), "
        f"{fixture['questions']} questions of which {fixture['unanswerable']} unanswerable. A rank is a page's "
        "position (each page once, its best chunk); recall@k: a gold page among the first k. "
        "Refusal accuracy: unanswerable refused and answerable not, over all questions.",
        "",
        "| ranking | recall@1 | recall@5 | MRR@10 | gold page in `retrieve`'s passages | refusal accuracy "
        "| unanswerable refused | answerable refused | p50 per question |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [
        ("ours (`search` / `retrieve`), PostgreSQL", pg["quality"]["ours"]),
        ("ours, SQLite", lite["quality"]["ours"]),
        ("bm25s + PyStemmer, in process", pg["quality"]["bm25s"]),
        ("PostgreSQL `websearch_to_tsquery` + `ts_rank`", pg["quality"].get("ts_rank")),
    ]
    for name, q in rows:
        if q is None:
            continue
        lines.append(
            f"| {name} | {q['recall_at_1']:.2f} | {q['recall_at_5']:.2f} | {q['mrr_at_10']:.2f} "
            f"| {'—' if q.get('gold_in_passages') is None else format(q['gold_in_passages'], '.2f')} "
            f"| {q['refusal_accuracy']:.2f} | {q['unanswerable_refused']:.2f} | {q['answerable_refused']:.2f} "
            f"| {_n(q['p50_ms'], 2)} ms |"
        )
    same = retrieval["same_top10"]
    lines += [
        "",
        f"Top 10 pages differ between PostgreSQL and SQLite for {same['differ']} of {same['questions']} questions.",
        "",
    ]
    lines += [
        "| index size | database | chunks | postings | `retrieve` p50 / p95 | `search` p50 / p95 |",
        "|---|---|---|---|---|---|",
    ]
    for name, backend in (("PostgreSQL", pg), ("SQLite", lite)):
        for size, point in backend["scale"]["sizes"].items():
            r, s = point["retrieve"], point["search"]
            lines.append(
                f"| {int(size):,} | {name} | {point['chunks']:,} | {point['postings']:,} "
                f"| {_n(r['p50_ms'], 2)} / {_n(r['p95_ms'], 2)} ms | {_n(s['p50_ms'], 2)} / {_n(s['p95_ms'], 2)} ms |"
            )
    turn = _at(pg["scale"]["sizes"], 10_000).get("turn")
    lines += ["", "| measure | PostgreSQL | SQLite |", "|---|---|---|"]
    cells = [
        f"{b['quality']['ingestion']['pages_per_second']}"
        + (" (store only)" if b["quality"]["ingestion"].get("store_only") else "")
        for b in (pg, lite)
    ]
    lines.append(f"| ingestion (`source_sync` of the sitemap over loopback), pages/s | {cells[0]} | {cells[1]} |")
    for label, key in (
        ("re-sync of the unchanged site: requests / 304s / unchanged / chunks written", "resync_conditional"),
        (
            "re-sync, validators forgotten for a sample: requests / 304s / unchanged / chunks written",
            "resync_unconditional",
        ),
    ):
        cells = []
        for backend in (pg, lite):
            r = backend["quality"].get(key)
            if r is None:
                cells.append("— (quick run: stored PostgreSQL's crawl)")
                continue
            o = r["outcomes"]
            sample = f" ({r['sample']} pages)" if "sample" in r else ""
            cells.append(f"{r['requests']} / {o['not_modified']} / {o['unchanged']} / {r['chunks_written']}{sample}")
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    for mode, label in (
        ("model", "a model answering at once, the same words"),
        ("offline", "the offline responder, whose answer is the retrieved sentences"),
    ):
        measured = (turn or {}).get(mode)
        if measured:
            lines.append(
                f"| turn p50 at 10k chunks, with / without the knowledge base (HTTP, {label}) "
                f"| {_n(measured['with_kb']['p50_ms'], 2)} / {_n(measured['without_kb']['p50_ms'], 2)} ms "
                f"({measured['added_p50_ms']:+.2f} ms)"
                f"{'' if measured['turn_uses_kb'] else ', **the turn did not retrieve**'} | — |"
            )
    big = pg["scale"]["sizes"].get("100000") or pg["scale"]["sizes"].get(100_000)
    lines += [
        "",
        "| target | |",
        "|---|---|",
        f"| recall@5 ≥ 0.90 (both databases) | {_mark(t['recall'])} |",
        f"| refusal accuracy ≥ 0.85 (both databases) | {_mark(t['refusal'])} |",
        f"| recall@5 ≥ bm25s's in the same run | {_mark(t['versus_bm25s'])} |",
        f"| `retrieve` p50 ≤ 25 ms at 100k chunks on PostgreSQL"
        f"{'' if big else ' (not measured in a quick run)'} | {_mark(t['p50_100k'])} |",
        f"| retrieval adds ≤ 5 ms p50 to a turn at 10k chunks (a model answering)"
        f"{'' if t['turn'] is not None else ' (not measurable: the turn does not retrieve)'} | {_mark(t['turn'])} |",
        f"| re-sync of an unchanged site rewrites no chunk | {_mark(t['resync'])} |",
        "",
    ]
    misses = pg["quality"]["ours"]["misses_at_5"]
    if misses:
        lines += [
            f"Ours on PostgreSQL, not in the top 5 ({len(misses)}): "
            + "; ".join(f"{m['id']} “{m['q']}” (rank {m['rank'] or '>10'})" for m in misses),
            "",
        ]
    return "\n".join(lines)
