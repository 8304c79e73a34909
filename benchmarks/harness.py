"""Runs the benchmark: every scenario in a fresh child process against one receiver process.

Started by ``benchmarks/run`` (which builds the virtualenv): ``python -m benchmarks.harness
[--quick]``. Reps are interleaved (rep 1 of every scenario, then rep 2, ...) so a drift of
the machine during the run hits every client alike; ratios are computed within the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.client
import importlib.metadata
import json
import os
import platform
import select
import selectors
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.clients import DELIVERING

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks"
RESULTS = HERE / "results"
CHILD_TIMEOUT = 900.0
SETTLE_SECONDS = 1.0  # no new id for this long after the child exited: delivery is over
SETTLE_LIMIT = 60.0
QUIET_BUSY = 0.25  # fraction of all cores; above it the machine counts as busy
QUIET_WAIT = 20.0  # seconds to wait for a quiet machine before each sample, at most
DISTURBED = 0.5  # other processes used more than half a core during the sample: retry it
RETRY_SHARE = 0.3  # at most this share of the samples is retried (bounds the run's time)


@dataclasses.dataclass(frozen=True)
class Scenario:
    group: str  # burst, threads, latency, scale
    client: str
    n: int
    threads: int = 1
    latency_ms: float = 0.0
    reps: int = 3
    finish: str = "flush"  # "exit": the child exits normally after emitting (clients.py)

    @property
    def label(self) -> str:
        extra = f" threads={self.threads}" if self.threads > 1 else ""
        extra += f" latency={self.latency_ms:g}ms" if self.latency_ms else ""
        extra += " exit" if self.finish == "exit" else ""
        return f"{self.group} {self.client} n={self.n:,}{extra}"


ALL_CLIENTS = ("logbridge", *report.PEERS, *report.BASELINES)
#: The clients of the latency scenarios: the ones that deliver everything they keep.
LATENCY_CLIENTS = ("logbridge", "segment_bigq", "rudderstack", "posthog", "orjson_requests")


@dataclasses.dataclass(frozen=True)
class Plan:
    mode: str
    scenarios: list[Scenario]
    burst_ns: tuple[int, ...]
    reference_n: int
    scale: tuple[int, int]
    notes: list[str]


def make_plan(quick: bool) -> Plan:
    """The scenarios of a full run (20-25 minutes on 2 cores) or of ``--quick`` (~1 minute)."""
    if quick:
        n, reps = 2_000, 1
        scenarios = [Scenario("burst", client, n, reps=reps) for client in ALL_CLIENTS]
        scenarios += [
            Scenario("threads", "logbridge", n, threads=8, reps=reps),
            Scenario("latency", "logbridge", n, latency_ms=2.0, reps=reps),
            Scenario("latency", "segment", n, latency_ms=2.0, reps=reps),
            *(
                Scenario("latency", client, n, latency_ms=50.0, reps=reps, finish="exit")
                for client in ("logbridge", "segment_bigq")
            ),
            Scenario("scale", "logbridge", 1_000, reps=reps),
            Scenario("scale", "logbridge", 20_000, reps=reps),
        ]
        notes = ["--quick: a smoke test (N=2,000, 1 rep); its ratios mean little."]
        return Plan("quick", scenarios, (n,), n, (1_000, 20_000), notes)
    big_reps = 2
    scenarios = [Scenario("burst", client, n) for n in (20_000, 100_000) for client in ALL_CLIENTS]
    scenarios += [
        Scenario("threads", client, 100_000, threads=8) for client in ("logbridge", "queue_handler")
    ]
    scenarios += [
        Scenario("latency", client, 20_000, latency_ms=2.0)
        for client in ("logbridge", "segment", "rudderstack", "posthog", "orjson_requests")
    ]
    # Real-world latency, ended as a short-lived job ends: mostly waiting, so fewer reps.
    scenarios += [
        Scenario("latency", client, 20_000, latency_ms=50.0, reps=2, finish="exit")
        for client in LATENCY_CLIENTS
    ]
    scenarios += [
        Scenario("latency", client, 100_000, latency_ms=50.0, reps=1, finish="exit")
        for client in LATENCY_CLIENTS
    ]
    scenarios += [
        Scenario("latency", client, 20_000, latency_ms=200.0, reps=1, finish="exit")
        for client in ("logbridge", "segment_bigq")
    ]
    scenarios += [
        Scenario("scale", "logbridge", 10_000),
        Scenario("scale", "logbridge", 1_000_000, reps=big_reps),
    ]
    notes = [
        f"scale N=1,000,000 runs {big_reps} reps (not 3) to keep the full run within ~20 minutes.",
        "latency 50 ms at N=20,000 runs 2 reps, at N=100,000 and 200 ms 1 rep: those runs "
        "are mostly waiting on the receiver's delay, which does not drift with the machine.",
    ]
    return Plan("full", scenarios, (20_000, 100_000), 100_000, (10_000, 1_000_000), notes)


@dataclasses.dataclass
class Child:
    """A finished child: exit code, output, and the kernel's account of its resources."""

    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float  # user + system, every thread, from start to exit
    max_rss_kib: int
    ended: float  # time.monotonic() when it was reaped


def run_child(argv: list[str], env: dict[str, str], timeout: float) -> Child:
    """Run ``argv`` to its end and reap it with ``wait4``, so its rusage is its own.

    Raises subprocess.TimeoutExpired (after killing it) when it outlives ``timeout``.
    """
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    out_fd, err_fd = process.stdout.fileno(), process.stderr.fileno()
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for stream in (process.stdout, process.stderr):
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                process.kill()
                process.wait()
                raise subprocess.TimeoutExpired(argv, timeout)
            for key, _ in selector.select(min(remaining, 1.0)):
                data = os.read(key.fd, 1 << 16)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fileobj)
    # Both pipes closed: the child is exiting. Reap it here, not in Popen, to get its rusage.
    _pid, status, usage = os.wait4(process.pid, 0)
    ended = time.monotonic()
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    process.stderr.close()
    out, err = b"".join(chunks[out_fd]), b"".join(chunks[err_fd])
    return Child(
        process.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
        usage.ru_utime + usage.ru_stime, usage.ru_maxrss, ended,
    )


class Receiver:
    """The counting receiver (benchmarks/receiver.py) in its own process, on 127.0.0.1."""

    def __init__(self, python: str) -> None:
        self.process = subprocess.Popen(
            [python, "-m", "benchmarks.receiver", "--port", "0", "--max-seconds", "7200"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 15.0)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the receiver did not start (said {line!r})")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, body=payload)
            return json.loads(connection.getresponse().read() or b"null")
        finally:
            connection.close()

    def reset(self, latency_ms: float) -> None:
        self._call("POST", "/reset", {"latency": latency_ms / 1000.0})

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/stats")
        return result

    def settle(self, expected: int) -> dict[str, Any]:
        """Wait until the receiver holds ``expected`` ids, or nothing new came for a while."""
        deadline = time.monotonic() + SETTLE_LIMIT
        stats = self.stats()
        last_change, last_unique = time.monotonic(), stats["unique"]
        while stats["unique"] < expected and time.monotonic() < deadline:
            time.sleep(0.05)
            stats = self.stats()
            if stats["unique"] != last_unique:
                last_change, last_unique = time.monotonic(), stats["unique"]
            elif time.monotonic() - last_change >= SETTLE_SECONDS:
                break
        return stats

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def child_env() -> dict[str, str]:
    """The environment of a measured child: no proxies, no LOGBRIDGE_*/POSTHOG_* settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(("LOGBRIDGE_", "POSTHOG_"))
        and key.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONHASHSEED"] = "0"
    return env


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(x) for x in stat.readline().split()[1:8]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _cpu_busy(interval: float) -> float:
    """The fraction of all cores busy over ``interval`` seconds."""
    busy0, total0 = _cpu_ticks()
    time.sleep(interval)
    busy1, total1 = _cpu_ticks()
    return (busy1 - busy0) / max(1, total1 - total0)


def wait_for_quiet() -> float:
    """Wait (bounded) until other processes leave the cores alone; how busy they were."""
    deadline = time.monotonic() + QUIET_WAIT
    busy = _cpu_busy(0.25)
    while busy > QUIET_BUSY and time.monotonic() < deadline:
        busy = _cpu_busy(0.5)
    return busy


def run_once(python: str, receiver: Receiver, scenario: Scenario) -> dict[str, Any]:
    """One rep of one scenario in a fresh child: the child's numbers and the receiver's."""
    receiver.reset(scenario.latency_ms)
    busy = wait_for_quiet()
    ticks_before, began = _cpu_ticks()[0], time.monotonic()
    spec = {
        "client": scenario.client,
        "n": scenario.n,
        "url": receiver.url,
        "threads": scenario.threads,
        "finish": scenario.finish,
    }
    try:
        done = run_child(
            [python, "-m", "benchmarks.clients", json.dumps(spec)], child_env(), CHILD_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return {"error": f"child timed out after {CHILD_TIMEOUT:g}s", "busy_before": busy}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr[-1500:]}", "busy_before": busy}
    child: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    if scenario.finish == "exit":
        # The child reported before its exit handling; the kernel saw it to the end.
        child.update(
            done=done.ended,
            cpu_seconds=done.cpu_seconds - child["cpu_before"],
            cpu_seconds_total=done.cpu_seconds,
            peak_rss_kib=done.max_rss_kib,
        )
    delivers = scenario.client in DELIVERING
    rx = receiver.settle(scenario.n) if delivers else receiver.stats()
    # CPU the machine spent during the sample beyond the child's and the receiver's own:
    # other processes (and this harness, a little). Large values mean a disturbed sample.
    machine = (_cpu_ticks()[0] - ticks_before) / os.sysconf("SC_CLK_TCK")
    foreign = max(0.0, machine - child["cpu_seconds_total"] - rx["cpu_seconds"])
    sample: dict[str, Any] = {
        "caller_us": child["caller_us"],
        "caller_cpu_us": child["caller_cpu_us"],
        "cpu_s": child["cpu_seconds"],
        "rss_mb": child["peak_rss_kib"] / 1024,
        "client_dropped": child["details"].get("client_dropped"),
        "child": child,
        "receiver": rx,
        "stderr_tail": done.stderr[-500:],
        "busy_before": busy,
        "foreign_cpu_share": foreign / max(1e-3, time.monotonic() - began),
        "child_cpu_s_whole": done.cpu_seconds,
        "exit_s": done.ended - child["emitted"],
    }
    if not delivers:  # a baseline that sends nothing: its CPU per event emitted
        sample["cpu_per_delivered_us"] = child["cpu_seconds"] / scenario.n * 1e6
    if delivers:
        e2e = None if rx["last_new_at"] is None else rx["last_new_at"] - child["start"]
        received = rx["messages"]
        sample.update(
            delivered=rx["unique"],
            lost=scenario.n - rx["unique"],
            dup=rx["duplicates"],
            e2e_s=e2e,
            eps=rx["unique"] / e2e if e2e else None,
            cpu_per_delivered_us=(
                child["cpu_seconds"] / rx["unique"] * 1e6 if rx["unique"] else None
            ),
            wire_per_event=rx["wire_bytes"] / received if received else None,
            body_per_event=rx["body_bytes"] / received if received else None,
            receiver_cpu_share=rx["cpu_seconds"] / e2e if e2e else None,
        )
    return sample


def _median(samples: list[dict[str, Any]], field: str) -> float | None:
    values = [s[field] for s in samples if s.get(field) is not None]
    return statistics.median(values) if values else None


def summarise(scenario: Scenario, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The medians of one scenario's reps (errors left out and counted)."""
    good = [s for s in samples if "error" not in s]
    row: dict[str, Any] = {
        **dataclasses.asdict(scenario),
        "delivers": scenario.client in DELIVERING,
        "reps_done": len(good),
        "failures": len(samples) - len(good),
    }
    for field in (
        "caller_us",
        "caller_cpu_us",
        "cpu_s",
        "rss_mb",
        "e2e_s",
        "eps",
        "lost",
        "dup",
        "wire_per_event",
        "body_per_event",
        "client_dropped",
        "receiver_cpu_share",
        "cpu_per_delivered_us",
        "exit_s",
    ):
        row[field] = _median(good, field)
    losts = [s["lost"] for s in good if s.get("lost") is not None]
    row["lost_max"] = max(losts) if losts else None
    return row


def environment(python: str) -> dict[str, Any]:
    versions = {}
    for dist in (
        "logbridge",
        "segment-analytics-python",
        "rudder-sdk-python",
        "posthog",
        "orjson",
        "requests",
    ):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "missing"
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = "unknown"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "logbridge"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        git = head + (" + uncommitted changes in logbridge/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "python": platform.python_version(),
        "executable": python,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "versions": versions,
        "git": git,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark logbridge against its peers.")
    parser.add_argument("--quick", action="store_true", help="smoke test: N=2,000, 1 rep")
    parser.add_argument("--only", help="run only scenarios whose label contains this text")
    args = parser.parse_args(argv)
    plan = make_plan(args.quick)
    scenarios = [s for s in plan.scenarios if not args.only or args.only in s.label]
    python = sys.executable
    command = (
        "benchmarks/run"
        + (" --quick" if args.quick else "")
        + (f" --only {args.only!r}" if args.only else "")
    )
    started = dt.datetime.now(dt.timezone.utc)
    began = time.monotonic()
    samples: dict[Scenario, list[dict[str, Any]]] = {s: [] for s in scenarios}
    total = sum(s.reps for s in scenarios)
    receiver = Receiver(python)
    count = 0
    retries_left = int(total * RETRY_SHARE)
    discarded: list[dict[str, Any]] = []
    try:
        for rep in range(max((s.reps for s in scenarios), default=0)):
            for scenario in scenarios:
                if rep >= scenario.reps:
                    continue
                count += 1
                t0 = time.monotonic()
                sample = run_once(python, receiver, scenario)
                if sample.get("foreign_cpu_share", 0.0) > DISTURBED and retries_left > 0:
                    # Other processes took the cores: try once more, keep the quieter one.
                    retries_left -= 1
                    again = run_once(python, receiver, scenario)
                    share = again.get("foreign_cpu_share", 1.0)
                    if "error" not in again and share < sample["foreign_cpu_share"]:
                        sample, again = again, sample
                    discarded.append({"scenario": scenario.label, **again})
                samples[scenario].append(sample)
                print(
                    f"[{count}/{total}] rep {rep + 1}/{scenario.reps} {scenario.label}: "
                    f"{_describe(sample)} ({time.monotonic() - t0:.1f}s)",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        receiver.stop()
    rows = [summarise(s, samples[s]) for s in scenarios]
    notes = list(plan.notes)
    every = [x for runs in samples.values() for x in runs]
    busy = [x for x in every if x.get("busy_before", 0) > QUIET_BUSY]
    disturbed = [x for x in every if x.get("foreign_cpu_share", 0) > DISTURBED]
    if busy or disturbed or discarded:
        notes.append(
            f"other processes on this machine: {len(discarded)} samples were run again "
            f"because they took more than {DISTURBED:.0%} of a core during the sample (the "
            f"quieter try is kept); {len(busy)} of the {count} kept samples started on a busy "
            f"machine (after waiting up to {QUIET_WAIT:g}s for quiet) and {len(disturbed)} "
            f"were still disturbed (over {DISTURBED:.0%} of a core). Medians damp this, "
            "but those numbers may be high."
        )
    for row in rows:
        share = row.get("receiver_cpu_share")
        if share is not None and share > 0.5:
            notes.append(
                f"{row['client']} n={row['n']:,}: the receiver was busy "
                f"{share:.0%} of the e2e time; it may have limited the throughput."
            )
        if row["failures"]:
            notes.append(
                f"{row['client']} n={row['n']:,} ({row['group']}): "
                f"{row['failures']} rep(s) failed; see results/latest.json."
            )
    run = {
        "mode": plan.mode,
        "command": command,
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": time.monotonic() - began,
        "environment": environment(python),
        "burst_ns": [n for n in plan.burst_ns if report.find(rows, group="burst", n=n)],
        "reference_n": plan.reference_n,
        "scale": list(plan.scale),
        "notes": notes,
        "rows": rows,
    }
    run["targets"] = report.targets(rows, plan.reference_n, plan.scale)
    text = report.markdown(run)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stem = "latest" if plan.mode == "full" and not args.only else f"latest-{plan.mode}"
    detail = {
        **run,
        "samples": {s.label: samples[s] for s in scenarios},
        "discarded_samples": discarded,
    }
    (RESULTS / f"{stem}.json").write_text(json.dumps(detail, indent=1, default=str))
    (RESULTS / f"{stem}.md").write_text(text + "\n")
    if stem == "latest":
        (HERE / "RESULTS.md").write_text(text + "\n")
    print(
        f"\nwrote {RESULTS / (stem + '.json')} and .md"
        + (" and benchmarks/RESULTS.md" if stem == "latest" else ""),
        file=sys.stderr,
    )
    return 0


def _describe(sample: dict[str, Any]) -> str:
    if "error" in sample:
        return "FAILED " + sample["error"].strip().splitlines()[-1][:200]
    text = f"caller {sample['caller_us']:.2f} µs/ev"
    if sample.get("e2e_s") is not None:
        text += f", e2e {sample['e2e_s']:.2f}s, {sample['eps']:,.0f} ev/s"
    if "lost" in sample:
        text += f", lost {sample['lost']:,}"
    if sample.get("cpu_per_delivered_us") is not None:
        text += f", CPU {sample['cpu_per_delivered_us']:.1f} µs/ev"
    return text + f", exit {sample['exit_s']:.1f}s, rss {sample['rss_mb']:.0f} MB"


if __name__ == "__main__":
    sys.exit(main())
