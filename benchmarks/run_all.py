"""Run the core benchmark battery for APScheduler 3.x and nbsched, side by side.

Every measurement runs each library in its own fresh subprocess (``bench_*.py --lib ...``),
one after the other (never at the same time), alternating which goes first from one
repetition to the next. The figure of a side is the median over ``--reps`` repetitions.
Prints a table (APScheduler, nbsched, factor, target, PASS/FAIL) and writes every raw JSON
line plus the summary to ``benchmarks/out/run-<timestamp>.json`` and the table to
``benchmarks/out/latest.md``.

"factor" is how many times better nbsched is (> 1: better), whichever direction the metric
goes: theirs / ours for times and costs, ours / theirs for rates.

Usage (from the repository root)::

    .venv/bin/python benchmarks/run_all.py              # full battery, about 20-25 min
    .venv/bin/python benchmarks/run_all.py --quick      # smaller sizes, one rep, ~5 min
    .venv/bin/python benchmarks/run_all.py --only burst --reps 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")
sys.path.insert(0, HERE)
import _common as c  # noqa: E402

Result = dict[str, Any]  # the "results" object of one JSON line


def _get(path: str) -> Callable[[Result], float | None]:
    """Extractor for a dotted key of the results object."""

    def get(res: Result) -> float | None:
        cur: Any = res
        for part in path.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return None
            cur = cur[part]
        return None if cur is None else float(cur)

    return get


def _lateness(key: str) -> Callable[[Result], float | None]:
    """A lateness figure, none if some body start could not be paired with its run."""
    get = _get(key)
    return lambda res: None if res.get("body_starts_paired") is False else get(res)


def _lost(res: Result) -> float | None:
    """Expected fire times whose body never ran (missed/skipped records included)."""
    if "expected_runs" not in res:
        return None
    return float(res["expected_runs"] - res["ran"])


@dataclass
class Metric:
    """One row of the table."""

    label: str
    get: Callable[[Result], float | None]
    unit: str
    higher_is_better: bool
    #: check of the nbsched figure (and APScheduler's, for relative targets): True = PASS
    target: Callable[[float, float | None], bool] | None = None
    target_text: str = ""
    fmt: str = "{:,.1f}"


@dataclass
class Measurement:
    name: str
    script: str
    args: list[str]
    quick_args: list[str]
    metrics: list[Metric]
    #: per-library extra arguments
    lib_args: dict[str, list[str]] = field(default_factory=dict)
    timeout: float = 1800


def _p99_tenth(ours: float, theirs: float | None) -> bool:
    return theirs is not None and ours <= theirs / 10


def _times(k: float) -> Callable[[float, float | None], bool]:
    return lambda ours, theirs: theirs is not None and theirs > 0 and ours >= k * theirs


def _at_most(limit: float) -> Callable[[float, float | None], bool]:
    return lambda ours, theirs: ours <= limit


def _lateness_metrics(tag: str, p99_target: Metric) -> list[Metric]:
    return [
        p99_target,
        Metric(f"{tag}: lateness p50", _lateness("lateness_ms.p50"), "ms", False),
        Metric(
            f"{tag}: runs not run (of expected)",
            _lost,
            "runs",
            False,
            _at_most(0),
            "0 (no run lost)",
            "{:,.0f}",
        ),
        Metric(
            f"{tag}: runs dropped silently",
            _get("silent"),
            "runs",
            False,
            _at_most(0),
            "0",
            "{:,.0f}",
        ),
        Metric(
            f"{tag}: missed/skipped recorded",
            lambda r: (r.get("missed_recorded") or 0) + (r.get("skipped_recorded") or 0),
            "runs",
            False,
            fmt="{:,.0f}",
        ),
        Metric(f"{tag}: process CPU", _get("cpu_util_pct"), "%", False),
    ]


def _per_job_ran(res: Result) -> float | None:
    loaded = res.get("jobs_loaded")
    return None if not loaded else res["ran"] / loaded


IDLE_CPU_LIMIT = 0.01  # CPU-s in the window: one 10 ms tick, what the anchor's method resolves


def _idle(store: str, label: str, quick_n: int) -> Measurement:
    """Idle CPU over 30 s with 10k jobs due in an hour, on one store."""
    return Measurement(
        f"idle_{store}",
        "bench_idle.py",
        ["--store", store, "--n", "10000", "--seconds", "30"],
        ["--store", store, "--n", str(quick_n), "--seconds", "5"],
        [
            Metric(
                f"idle, 10k jobs due in 1 h, {label}: process CPU",
                _get("cpu_s"),
                "CPU-s",
                False,
                _at_most(IDLE_CPU_LIMIT),
                "< 0.01 CPU-s",
                "{:.4f}",
            ),
            Metric(
                f"idle {label}: wake-ups (voluntary ctx switches)",
                _get("vol_ctx_switches"),
                "",
                False,
                fmt="{:,.0f}",
            ),
        ],
    )


def measurements() -> list[Measurement]:
    lat = "bench_lateness.py"
    return [
        Measurement(
            "lateness_1k",
            lat,
            ["--n", "1000", "--duration", "20"],
            ["--n", "1000", "--duration", "5"],
            _lateness_metrics(
                "1k aligned",
                Metric(
                    "1k aligned: lateness p99",
                    _lateness("lateness_ms.p99"),
                    "ms",
                    False,
                    _p99_tenth,
                    "≤ 1/10 of APScheduler",
                ),
            ),
        ),
        Measurement(
            "lateness_10k",
            lat,
            ["--n", "10000", "--duration", "20"],
            ["--n", "10000", "--duration", "5"],
            _lateness_metrics(
                "10k aligned",
                Metric(
                    "10k aligned: lateness p99",
                    _lateness("lateness_ms.p99"),
                    "ms",
                    False,
                    _at_most(250),
                    "≤ 250 ms",
                ),
            ),
        ),
        Measurement(
            "dispatch_cost",
            "bench_dispatch_cost.py",
            ["--n", "10000", "--duration", "5"],
            ["--n", "5000", "--duration", "3"],
            [
                Metric(
                    "loop-thread CPU per due job (10k aligned)",
                    _get("loop_cpu_us_per_run"),
                    "µs",
                    False,
                    _at_most(20),
                    "≤ 20 µs",
                ),
                Metric(
                    "dispatch-pass wall time per job (anchor's method)",
                    _get("pass_wall_us_per_job"),
                    "µs",
                    False,
                ),
            ],
        ),
        Measurement(
            "burst_memory",
            "bench_burst.py",
            ["--store", "memory", "--n", "10000"],
            ["--store", "memory", "--n", "10000"],
            [
                Metric(
                    "burst 10k date jobs, memory: throughput",
                    _get("throughput_jobs_per_s"),
                    "jobs/s",
                    True,
                    _times(5),
                    "≥ 5× APScheduler",
                    "{:,.0f}",
                ),
                Metric("burst memory: first body after T", _get("first_start_ms"), "ms", False),
            ],
        ),
        Measurement(
            "burst_sqlite",
            "bench_burst.py",
            ["--store", "sqlite", "--n", "10000"],
            ["--store", "sqlite", "--n", "2000"],
            [
                Metric(
                    "burst 10k date jobs, SQLite: throughput",
                    _get("throughput_jobs_per_s"),
                    "jobs/s",
                    True,
                    _times(10),
                    "≥ 10× APScheduler",
                    "{:,.0f}",
                ),
                Metric("burst SQLite: first body after T", _get("first_start_ms"), "ms", False),
            ],
        ),
        Measurement(
            "addjob_sqlite",
            "bench_addjob.py",
            ["--store", "sqlite", "--n", "10000"],
            ["--store", "sqlite", "--n", "1000"],
            [
                Metric(
                    "add_job into started scheduler, SQLite",
                    _get("add_rate_jobs_per_s"),
                    "jobs/s",
                    True,
                    _times(10),
                    "≥ 10× APScheduler",
                    "{:,.0f}",
                ),
            ],
        ),
        Measurement(
            "addjob_memory",
            "bench_addjob.py",
            ["--store", "memory", "--n", "10000"],
            ["--store", "memory", "--n", "10000"],
            [
                Metric(
                    "add_job into started scheduler, memory",
                    _get("add_rate_jobs_per_s"),
                    "jobs/s",
                    True,
                    fmt="{:,.0f}",
                ),
            ],
        ),
        Measurement(
            "restart_sqlite",
            "bench_restart.py",
            ["--n", "10000"],
            ["--n", "2000"],
            [
                Metric(
                    "restart, 10k overdue SQLite jobs: caught up",
                    _get("catch_up_s"),
                    "s",
                    False,
                    _at_most(1.0),
                    "≤ 1 s",
                    "{:,.3f}",
                ),
                Metric(
                    "restart: bodies run per overdue job",
                    _per_job_ran,
                    "",
                    True,
                    lambda ours, theirs: abs(ours - 1.0) < 1e-9,
                    "1 (coalesce)",
                    "{:.2f}",
                ),
                Metric("restart: reported missed", _get("missed"), "runs", False, fmt="{:,.0f}"),
                Metric(
                    "restart: store's next run times written",
                    _get("store_synced_s"),
                    "s",
                    False,
                    fmt="{:,.3f}",
                ),
            ],
        ),
        _idle("memory", "memory", quick_n=10000),
        _idle("sqlite", "SQLite", quick_n=2000),
        Measurement(
            "memory",
            "bench_memory.py",
            ["--n", "100000"],
            ["--n", "20000"],
            [
                Metric(
                    "RSS per job, 100k jobs, memory store",
                    _get("bytes_per_job"),
                    "B",
                    False,
                    _at_most(600),
                    "≤ 600 B",
                    "{:,.0f}",
                ),
            ],
        ),
    ]


# -- running ----------------------------------------------------------------------------------


class LoadSampler(threading.Thread):
    """Samples the 1-minute load average every 5 s while the battery runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="loadavg")
        self.samples: list[float] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop_event.wait(5)

    def stop(self) -> dict[str, float | int]:
        self._stop_event.set()
        s = self.samples or [os.getloadavg()[0]]
        return {
            "min": round(min(s), 2),
            "median": round(statistics.median(s), 2),
            "max": round(max(s), 2),
            "samples": len(s),
        }


def run_one(m: Measurement, lib: str, quick: bool) -> dict[str, Any]:
    args = [
        sys.executable,
        os.path.join(HERE, m.script),
        "--lib",
        lib,
        *(m.quick_args if quick else m.args),
        *m.lib_args.get(lib, []),
    ]
    t = time.monotonic()
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=m.timeout, cwd=HERE)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {m.timeout} s", "cmd": args}
    took = time.monotonic() - t
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": f"exit {p.returncode}: {p.stderr.strip()[-2000:]}", "cmd": args}
    out = json.loads(lines[-1])
    out["wall_s"] = round(took, 1)
    if p.stderr.strip():
        out["stderr"] = p.stderr.strip()[-2000:]
    return out


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def summarize(m: Measurement, runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for metric in m.metrics:
        vals = {
            lib: [metric.get(r["results"]) for r in runs[lib] if "results" in r] for lib in c.LIBS
        }
        theirs, ours = _median(vals["aps3"]), _median(vals["nbsched"])
        factor = None
        if theirs is not None and ours is not None:
            if metric.higher_is_better and theirs > 0:
                factor = ours / theirs
            elif not metric.higher_is_better and ours > 0:
                factor = theirs / ours
        verdict = ""
        if metric.target is not None:
            verdict = "n/a" if ours is None else ("PASS" if metric.target(ours, theirs) else "FAIL")
        rows.append(
            {
                "measurement": m.name,
                "metric": metric.label,
                "unit": metric.unit,
                "aps3": theirs,
                "nbsched": ours,
                "aps3_all": vals["aps3"],
                "nbsched_all": vals["nbsched"],
                "factor": factor,
                "target": metric.target_text,
                "verdict": verdict,
                "fmt": metric.fmt,
            }
        )
    return rows


def _fmt(v: float | None, fmt: str) -> str:
    return "–" if v is None else fmt.format(v)


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| measurement | APScheduler 3.11.3 | nbsched | factor | target | result |\n"
        "|---|---:|---:|---:|---|---|"
    )
    lines = [head]
    for r in rows:
        unit = f" {r['unit']}" if r["unit"] else ""
        factor = "–" if r["factor"] is None else f"{r['factor']:,.1f}×"
        spread = ""
        if len([v for v in r["nbsched_all"] if v is not None]) > 1:
            vals = [v for v in r["nbsched_all"] if v is not None]
            spread = f" [{_fmt(min(vals), r['fmt'])}–{_fmt(max(vals), r['fmt'])}]"
        lines.append(
            f"| {r['metric']} | {_fmt(r['aps3'], r['fmt'])}{unit} | "
            f"{_fmt(r['nbsched'], r['fmt'])}{unit}{spread} | {factor} | {r['target']} | "
            f"{r['verdict']} |"
        )
    return "\n".join(lines)


def git_state() -> str:
    """The checked-out commit, and whether ``nbsched/`` has uncommitted changes (read-only)."""
    root = os.path.dirname(HERE)
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "nbsched"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes in nbsched/' if dirty else ''}" or "unknown"


def source_digest() -> str:
    """A digest of every ``nbsched/**/*.py``: the checkout is shared, so the runner checks that
    the code did not change while the battery ran."""
    import hashlib

    h = hashlib.sha256()
    root = os.path.join(os.path.dirname(HERE), "nbsched")
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                h.update(path.encode())
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()[:12]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])  # type: ignore[union-attr]
    names = [m.name for m in measurements()]
    ap.add_argument("--only", help=f"comma-separated names or prefixes: {', '.join(names)}")
    ap.add_argument(
        "--reps", type=int, default=None, help="repetitions per side (default 3, 1 with --quick)"
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes and durations (a smoke run; absolute targets are not comparable)",
    )
    a = ap.parse_args()
    reps = a.reps if a.reps is not None else (1 if a.quick else 3)
    selected = measurements()
    if a.only:
        wanted = [w.strip() for w in a.only.split(",") if w.strip()]
        selected = [m for m in selected if any(m.name.startswith(w) for w in wanted)]
        if not selected:
            ap.error(f"--only {a.only!r} matches none of {names}")

    os.makedirs(OUT, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    command = " ".join(["python", "benchmarks/run_all.py", *sys.argv[1:]])
    commit, digest = git_state(), source_digest()
    sampler = LoadSampler()
    sampler.start()
    started = time.time()
    raw: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for m in selected:
        runs: dict[str, list[dict[str, Any]]] = {lib: [] for lib in c.LIBS}
        for rep in range(reps):
            order = c.LIBS if rep % 2 == 0 else tuple(reversed(c.LIBS))
            for lib in order:
                c.log(f"[{time.strftime('%H:%M:%S')}] {m.name} rep {rep + 1}/{reps} {lib} ...")
                out = run_one(m, lib, a.quick)
                out.setdefault("lib", lib)
                out["measurement"], out["rep"] = m.name, rep
                if "error" in out:
                    c.log(f"    ERROR: {out['error'][:500]}")
                runs[lib].append(out)
                raw.append(out)
        m_rows = summarize(m, runs)
        rows.extend(m_rows)
        c.log(table(m_rows))
    load = sampler.stop()

    facts = {
        "command": command,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(started)),
        "duration_min": round((time.time() - started) / 60, 1),
        "reps": reps,
        "quick": a.quick,
        "machine": c.machine(),
        "loadavg_1min_during_run": load,
        "versions": c.lib_versions(),
        "nbsched_commit": commit,
        "nbsched_source_digest": digest,
        "nbsched_changed_during_run": source_digest() != digest,
    }
    if facts["nbsched_changed_during_run"]:
        c.log("WARNING: nbsched/ changed while the battery ran; the figures mix versions")
    text = table(rows)
    changed = "; CHANGED DURING THE RUN" if facts["nbsched_changed_during_run"] else ""
    md = (
        f"Command: `{command}`  \n"
        f"Started {facts['started']}, took {facts['duration_min']} min; median of {reps} "
        f"run(s) per side{' (QUICK: smaller sizes)' if a.quick else ''}.  \n"
        f"Machine: nproc {facts['machine']['nproc']}, Python {facts['machine']['python']}, "
        f"{facts['machine']['platform']}; 1-min load average during the run "
        f"{load['min']}–{load['max']} (median {load['median']}).  \n"
        f"Versions: {', '.join(f'{k} {v}' for k, v in facts['versions'].items())}; "
        f"nbsched at {commit} (source digest {digest}{changed}).\n\n"
        f"{text}\n"
    )
    with open(os.path.join(OUT, f"run-{stamp}.json"), "w") as f:
        json.dump({"facts": facts, "rows": rows, "raw": raw}, f, indent=1, sort_keys=True)
    with open(os.path.join(OUT, "latest.md"), "w") as f:
        f.write(md)
    print(md)
    print(f"raw results: {os.path.relpath(os.path.join(OUT, f'run-{stamp}.json'))}")


if __name__ == "__main__":
    main()
