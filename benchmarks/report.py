"""Turns the medians of a run into the markdown report: table, ratios and targets.

Pure functions over plain dicts (one per scenario, see ``harness.summarise``), so the
report can be rebuilt from ``results/latest.json`` without running anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

Row = dict[str, Any]

LABELS = {
    "logbridge": "logbridge",
    "segment": "Segment",
    "segment_bigq": "Segment (big queue)",
    "rudderstack": "RudderStack",
    "posthog": "PostHog",
    "null_handler": "NullHandler",
    "queue_handler": "QueueHandler",
    "orjson_requests": "orjson+requests",
}
PEERS = ("segment", "segment_bigq", "rudderstack", "posthog")
BASELINES = ("null_handler", "queue_handler", "orjson_requests")
#: Per-event cost counts as flat when the large-N figure is within this factor.
FLAT_FACTOR = 1.1
#: The latency of the real-world scenarios (ms) and the Segment variant they compare with.
REAL_LATENCY_MS = 50.0
SEGMENT_DELIVERING = "segment_bigq"


def find(rows: Iterable[Row], **match: Any) -> Row | None:
    """The first row whose fields equal ``match``."""
    for row in rows:
        if all(row.get(key) == value for key, value in match.items()):
            return row
    return None


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or None when either is missing."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def fx(value: float | None) -> str:
    """A ratio as ``0.62x``."""
    if value is None:
        return "n/a"
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def scenario_name(row: Row) -> str:
    """``burst``, ``latency 50 ms, exit``..."""
    name = row["group"] + (f" {row['latency_ms']:g} ms" if row["latency_ms"] else "")
    return name + (", exit" if row.get("finish") == "exit" else "")


def table(rows: Sequence[Row]) -> str:
    """Every scenario's medians as one markdown table."""
    header = (
        "| scenario | client | N | threads | reps | caller µs/ev | caller CPU µs/ev "
        "| total CPU µs/ev | e2e s | delivered ev/s | lost | dup | exit s | peak RSS MB "
        "| CPU s | wire B/ev |"
    )
    lines = [header, "|" + "---|" * 16]
    for row in rows:
        delivers = row["delivers"]
        lost = row["lost"]
        lost_text = _num(lost, 0) if delivers else "—"
        if delivers and row.get("client_dropped"):
            lost_text += f" (dropped {row['client_dropped']:,.0f})"
        exits = row.get("finish") == "exit"
        lines.append(
            "| "
            + " | ".join(
                [
                    scenario_name(row),
                    LABELS.get(row["client"], row["client"]),
                    f"{row['n']:,}",
                    str(row["threads"]),
                    str(row["reps_done"]) + ("" if not row["failures"] else " (!)"),
                    _num(row["caller_us"], 2),
                    _num(row["caller_cpu_us"], 2),
                    _num(row.get("cpu_per_delivered_us"), 2),
                    _num(row["e2e_s"], 2) if delivers else "—",
                    _num(row["eps"], 0) if delivers else "—",
                    lost_text,
                    _num(row["dup"], 0) if delivers else "—",
                    _num(row.get("exit_s"), 2) if exits else "—",
                    _num(row["rss_mb"], 1),
                    _num(row["cpu_s"], 2),
                    _num(row["wire_per_event"], 1) if delivers else "—",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def ratio_table(rows: Sequence[Row], n: int) -> str:
    """logbridge's medians divided by each other client's, at one N of the burst group."""
    mine = find(rows, group="burst", client="logbridge", n=n)
    if mine is None:
        return ""
    lines = [
        "| logbridge vs | caller µs | caller CPU µs | total CPU µs/ev | delivered ev/s "
        "| peak RSS | CPU s | wire B/ev |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for client in (*PEERS, *BASELINES):
        other = find(rows, group="burst", client=client, n=n)
        if other is None:
            continue
        both = mine["delivers"] and other["delivers"]
        cells = [
            fx(ratio(mine["caller_us"], other["caller_us"])),
            fx(ratio(mine["caller_cpu_us"], other["caller_cpu_us"])),
            fx(ratio(mine.get("cpu_per_delivered_us"), other.get("cpu_per_delivered_us")))
            if both
            else "—",
            fx(ratio(mine["eps"], other["eps"])) if both else "—",
            fx(ratio(mine["rss_mb"], other["rss_mb"])),
            fx(ratio(mine["cpu_s"], other["cpu_s"])),
            fx(ratio(mine["wire_per_event"], other["wire_per_event"])) if both else "—",
        ]
        lines.append(f"| {LABELS[client]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratio_lines(rows: Sequence[Row], n: int) -> list[str]:
    """The same ratios as sentences, e.g. "caller cost: 0.6x QueueHandler, 0.2x Segment"."""
    mine = find(rows, group="burst", client="logbridge", n=n)
    if mine is None:
        return []
    others = [
        row
        for client in (*PEERS, *BASELINES)
        if (row := find(rows, group="burst", client=client, n=n)) is not None
    ]

    def sentence(title: str, field: str, delivering_only: bool = False) -> str:
        parts = [
            f"{fx(ratio(mine[field], other[field]))} {LABELS[other['client']]}"
            for other in others
            if not delivering_only or other["delivers"]
        ]
        return f"N={n:,}: {title}: " + ", ".join(parts)

    return [
        sentence("caller cost (wall)", "caller_us"),
        sentence("caller cost (caller-thread CPU)", "caller_cpu_us"),
        sentence("delivered events/s", "eps", delivering_only=True),
        sentence("total CPU per delivered event", "cpu_per_delivered_us", delivering_only=True),
        sentence("peak RSS", "rss_mb"),
        sentence("CPU seconds", "cpu_s"),
        sentence("wire bytes/event", "wire_per_event", delivering_only=True),
    ]


def side_tables(rows: Sequence[Row]) -> list[str]:
    """8 threads vs 1, and 2 ms latency vs none, per client, as sentences."""
    lines: list[str] = []
    for row in rows:
        if row["group"] == "threads":
            single = find(rows, group="burst", client=row["client"], n=row["n"])
            if single is not None:
                wall = ratio(row["caller_us"], single["caller_us"])
                cpu = ratio(row["caller_cpu_us"], single["caller_cpu_us"])
                lines.append(
                    f"{LABELS[row['client']]}: {row['threads']} threads vs 1 at N={row['n']:,}: "
                    f"caller µs/ev {fx(wall)}, caller CPU µs/ev {fx(cpu)}"
                )
    for row in rows:
        if row["group"] == "latency":
            base = find(rows, group="burst", client=row["client"], n=row["n"])
            if base is not None and row["delivers"]:
                lines.append(
                    f"{LABELS[row['client']]}: with {row['latency_ms']:g} ms per batch "
                    f"(N={row['n']:,}), delivered ev/s {_num(row['eps'], 0)} = "
                    f"{fx(ratio(row['eps'], base['eps']))} of its rate with no latency"
                )
    return lines


def latency_lines(rows: Sequence[Row]) -> list[str]:
    """At each real-world latency and N: logbridge's delivery rate and losses beside the others'."""
    lines: list[str] = []
    for row in rows:
        if row["client"] != "logbridge" or row.get("finish") != "exit":
            continue
        at = {"group": "latency", "latency_ms": row["latency_ms"], "n": row["n"]}
        parts = []
        for other in rows:
            if all(other.get(k) == v for k, v in at.items()) and other is not row:
                parts.append(
                    f"{fx(ratio(row['eps'], other['eps']))} {LABELS[other['client']]} "
                    f"({_num(other['eps'], 0)} ev/s, lost {_num(other['lost_max'], 0)})"
                )
        lines.append(
            f"{row['latency_ms']:g} ms, N={row['n']:,}, at normal exit: logbridge "
            f"{_num(row['eps'], 0)} ev/s, lost {_num(row['lost_max'], 0)} (worst rep), "
            f"exit took {_num(row.get('exit_s'), 1)} s; delivered ev/s "
            + (", ".join(parts) or "alone")
        )
    return lines


def targets(rows: Sequence[Row], ref_n: int, scale: tuple[int, int]) -> list[Row]:
    """The targets of issue 11, then the earlier ones kept: met / not met, with the ratios."""
    burst = {client: find(rows, group="burst", client=client, n=ref_n) for client in LABELS}
    lb = burst["logbridge"]
    out: list[Row] = []

    def add(
        number: str, goal: str, met: bool | None, detail: str, met_cpu: bool | None = None
    ) -> None:
        out.append(
            {"target": number, "goal": goal, "met": met, "met_cpu": met_cpu, "detail": detail}
        )

    def get(client: str, field: str) -> float | None:
        row = burst.get(client)
        return None if row is None or lb is None else ratio(lb[field], row[field])

    at = f"(N={ref_n:,})"
    # 1. real-world latency: 10x Segment's delivery rate, nothing lost for 20,000 at exit
    slow = [
        r for r in rows
        if r["group"] == "latency" and r["latency_ms"] == REAL_LATENCY_MS
        and r.get("finish") == "exit"
    ]
    ns = sorted({r["n"] for r in slow})
    speedups = []
    for n in ns:
        mine = find(slow, client="logbridge", n=n)
        seg = find(slow, client=SEGMENT_DELIVERING, n=n)
        speedups.append((n, ratio(mine and mine["eps"], seg and seg["eps"])))
    small = find(slow, client="logbridge", n=min(ns)) if ns else None
    lost_small = None if small is None else small["lost_max"]
    add(
        "1",
        f"at {REAL_LATENCY_MS:g} ms: delivered ev/s >= 10x Segment (big queue), and 0 lost "
        f"for the {min(ns, default=0):,} burst at normal exit with defaults",
        _verdict(
            [lost_small, *(x for _, x in speedups)],
            lambda lost, *xs: lost == 0 and all(x >= 10 for x in xs),
        )
        if speedups
        else None,
        ", ".join(f"{fx(x)} Segment (big queue) at N={n:,}" for n, x in speedups)
        + f"; lost {_num(lost_small, 0)} (worst rep) at N={min(ns, default=0):,}",
    )
    # 2. loopback: throughput and total CPU against the plain loop, caller CPU
    base = get("orjson_requests", "eps")
    cpu = get("orjson_requests", "cpu_per_delivered_us")
    qh_cpu = get("queue_handler", "caller_cpu_us")
    add(
        "2",
        "over loopback: delivered ev/s >= 0.8x orjson+requests, total CPU per delivered "
        "event <= 1.3x its, caller CPU <= 1.0x QueueHandler",
        _verdict([base, cpu, qh_cpu], lambda b, c, q: b >= 0.8 and c <= 1.3 and q <= 1.0),
        f"{fx(base)} orjson+requests delivered ev/s, {fx(cpu)} its total CPU per delivered "
        f"event, caller CPU {fx(qh_cpu)} QueueHandler {at}",
    )
    # 3. burst: zero lost, RSS <= half of Segment with a big queue
    lost = None if lb is None else lb["lost_max"]
    rss = get("segment_bigq", "rss_mb")
    add(
        "3",
        f"burst of {ref_n:,}: 0 lost (every rep) and peak RSS <= 0.5x Segment (big queue)",
        _verdict([lost, rss], lambda lost, r: lost == 0 and r <= 0.5),
        f"lost {_num(lost, 0)} (worst rep), peak RSS {fx(rss)} Segment (big queue), "
        f"{fx(get('segment', 'rss_mb'))} Segment default {at}",
    )
    # 4. flat per-event cost
    lo = find(rows, group="scale", client="logbridge", n=scale[0])
    hi = find(rows, group="scale", client="logbridge", n=scale[1])
    flat = ratio(hi and hi["caller_us"], lo and lo["caller_us"])
    flat_cpu = ratio(hi and hi["caller_cpu_us"], lo and lo["caller_cpu_us"])
    dropped = hi and hi.get("client_dropped")
    add(
        "4",
        f"per-event caller cost flat from {scale[0]:,} to {scale[1]:,} (<= {FLAT_FACTOR}x)",
        _verdict([flat], lambda f: f <= FLAT_FACTOR),
        f"{fx(flat)} wall, {fx(flat_cpu)} caller CPU ({_num(dropped, 0)} dropped at "
        f"{scale[1]:,}: queue bound)",
        _verdict([flat_cpu], lambda f: f <= FLAT_FACTOR),
    )
    # Kept from the first benchmark issue.
    seg, seg_cpu = get("segment", "caller_us"), get("segment", "caller_cpu_us")
    add(
        "kept",
        "caller cost <= 0.25x Segment track()",
        _verdict([seg], lambda x: x <= 0.25),
        f"wall {fx(seg)}, caller CPU {fx(seg_cpu)} Segment {at}",
        _verdict([seg_cpu], lambda x: x <= 0.25),
    )
    wire = get("rudderstack", "wire_per_event")
    add(
        "kept",
        "wire bytes per event (gzip, default) <= RudderStack's gzip'd batches",
        _verdict([wire], lambda w: w <= 1.0),
        f"{fx(wire)} RudderStack ({_num(lb and lb['wire_per_event'])} vs "
        f"{_num((burst['rudderstack'] or {}).get('wire_per_event'))} B/event, request "
        f"headers included) {at}",
    )
    threads = find(rows, group="threads", client="logbridge", n=ref_n)
    thr = ratio(threads and threads["caller_us"], lb and lb["caller_us"])
    thr_cpu = ratio(threads and threads["caller_cpu_us"], lb and lb["caller_cpu_us"])
    add(
        "kept",
        "8 emitting threads <= 1.5x the single-thread caller cost",
        _verdict([thr], lambda t: t <= 1.5),
        f"{fx(thr)} wall, {fx(thr_cpu)} caller CPU {at}",
        _verdict([thr_cpu], lambda t: t <= 1.5),
    )
    return out


def _verdict(values: Sequence[float | None], test: Callable[..., bool]) -> bool | None:
    """None when a measurement is missing, else ``test(*values)``."""
    if any(value is None for value in values):
        return None
    return test(*values)


def verdict(met: bool | None) -> str:
    """met / NOT MET / not measured."""
    return {True: "met", False: "NOT MET", None: "not measured"}[met]


def target_lines(results: Sequence[Row]) -> list[str]:
    """One line per target; targets on caller cost say wall and CPU verdicts when they differ."""
    lines = []
    for t in results:
        said = verdict(t["met"])
        if t.get("met_cpu") is not None and t["met_cpu"] != t["met"]:
            said += f" on wall time, {verdict(t['met_cpu'])} on caller-thread CPU"
        number = f"{t['target']}." if t["target"] != "kept" else "(kept)"
        lines.append(f"{number} {t['goal']}: {said} — {t['detail']}")
    return lines


def markdown(run: Row) -> str:
    """The whole report of a run, as markdown."""
    rows: list[Row] = run["rows"]
    env = run["environment"]
    parts = [
        f"# logbridge benchmark ({run['mode']})",
        "",
        f"Command: `{run['command']}` — {run['started']} — {run['duration_s']:.0f} s — "
        f"{env['cpu']} ({env['cores']} cores), Python {env['python']}",
        "",
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        + f"; logbridge tree at {env['git']}",
        "",
        "Medians over the reps. Caller = wall time of the emit loop / N; caller CPU = the",
        "emitting threads' CPU time / N; e2e = first emit to the receiver holding the last",
        "delivered event; CPU s = the client process over emit+delivery; wire = request bytes",
        "(headers + body) received / events received. Only ratios within one run are",
        "comparable (this machine drifts up to 1.7x between runs). A client with background",
        "threads (logbridge, the SDKs) pays for their GIL time in its wall caller cost, which",
        "therefore varies between reps; the caller CPU figure is the steady one.",
        "",
        table(rows),
        "",
    ]
    notes = run.get("notes") or []
    if notes:
        parts += ["Notes:", "", *[f"- {note}" for note in notes], ""]
    ref_n = run["reference_n"]
    for n in run["burst_ns"]:
        block = ratio_table(rows, n)
        if block:
            parts += [f"## logbridge / other, N={n:,} (same run)", "", block, ""]
    parts += ["## Ratios", "", *[f"- {line}" for line in ratio_lines(rows, ref_n)]]
    parts += [*[f"- {line}" for line in side_tables(rows)], ""]
    slow = latency_lines(rows)
    if slow:
        parts += ["## At real-world latency (same run)", "", *[f"- {line}" for line in slow], ""]
    parts += ["## Targets", "", *[f"- {line}" for line in target_lines(run["targets"])], ""]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild the report of a run from its JSON: ``python -m benchmarks.report [file]``."""
    import json
    import sys
    from pathlib import Path

    args = list(sys.argv[1:] if argv is None else argv)
    here = Path(__file__).resolve().parent
    source = Path(args[0]) if args else here / "results" / "latest.json"
    run = json.loads(source.read_text())
    run["targets"] = targets(run["rows"], run["reference_n"], tuple(run["scale"]))
    source.write_text(json.dumps(run, indent=1, default=str))
    text = markdown(run)
    source.with_suffix(".md").write_text(text + "\n")
    if source.resolve() == (here / "results" / "latest.json").resolve():
        (here / "RESULTS.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
