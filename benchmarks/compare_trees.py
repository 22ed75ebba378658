"""Run nbsched's side of the core battery for two commits, side by side.

"Did this change make anything slower?" is a question about two versions of nbsched, not
about nbsched against APScheduler: this runs every measurement of ``run_all.py`` (its
arguments and metrics) with ``--lib nbsched`` for both commits, each exported with
``git archive`` into a temporary folder and run with that tree's own benchmark script and
package (``PYTHONPATH``), one after the other, alternating which goes first from one
repetition to the next. A side's figure is its median; the table shows both, how many times
better the second is (> 1: better, whichever direction the metric goes), and *p*: the chance
that samples of one and the same tree would put the second this far behind, or further
(exact one-sided Mann-Whitney test over every split of the pooled samples). A row is marked
``worse`` when p < 0.05. (A rule such as "the second's median is worse than every sample of
the first" marks a row of two identical trees worse once in five with three samples a side:
on a busy two-core machine many rows swing by a third from run to run.) Four or more
samples a side are needed for p < 0.05; the default is five.

Usage (from the repository root; about 25 minutes for the full battery with 5 repetitions)::

    .venv/bin/python benchmarks/compare_trees.py 2cf8ded HEAD
    .venv/bin/python benchmarks/compare_trees.py 2cf8ded HEAD --quick --only burst
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
sys.path.insert(0, HERE)
import _common as c  # noqa: E402
import run_all  # noqa: E402


def export(commit: str, into: str) -> tuple[str, str]:
    """``git archive`` of ``commit`` into a folder of ``into``: (its full hash, the folder)."""
    full = subprocess.run(
        ["git", "rev-parse", "--verify", f"{commit}^{{commit}}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()
    tree = os.path.join(into, full[:10])
    os.makedirs(tree)
    archive = subprocess.run(
        ["git", "archive", full], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    return full, tree


def run_in(tree: str, m: run_all.Measurement, quick: bool) -> dict[str, Any]:
    """One run of measurement ``m``'s nbsched side, with the tree's script and package."""
    args = [
        sys.executable,
        os.path.join(tree, "benchmarks", m.script),
        "--lib",
        "nbsched",
        *(m.quick_args if quick else m.args),
        *m.lib_args.get("nbsched", []),
    ]
    env = dict(os.environ, PYTHONPATH=tree)
    try:
        p = subprocess.run(
            args, capture_output=True, text=True, timeout=m.timeout, cwd=tree, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {m.timeout} s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": f"exit {p.returncode}: {p.stderr.strip()[-2000:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


#: a row is marked worse below this p
ALPHA = 0.05


def p_behind(first: list[float], second: list[float], higher_is_better: bool) -> float:
    """One-sided exact Mann-Whitney: of every way to split the pooled samples into groups
    of the two sizes, the share in which the second group is as far behind as observed, or
    further (ties count a half). 1.0 when the samples cannot tell (all equal)."""

    def behind(a: list[float], b: list[float]) -> float:
        u = 0.0
        for x in a:
            for y in b:
                if y == x:
                    u += 0.5
                elif (y < x) == higher_is_better:
                    u += 1.0
        return u

    observed = behind(first, second)
    pooled = first + second
    splits = 0
    as_far = 0
    for picked in itertools.combinations(range(len(pooled)), len(second)):
        chosen = set(picked)
        b = [pooled[i] for i in picked]
        a = [v for i, v in enumerate(pooled) if i not in chosen]
        splits += 1
        as_far += behind(a, b) >= observed
    return as_far / splits


def compare(
    metric: run_all.Metric, first: list[float | None], second: list[float | None]
) -> dict[str, Any]:
    a = [v for v in first if v is not None]
    b = [v for v in second if v is not None]
    row: dict[str, Any] = {"metric": metric.label, "unit": metric.unit, "fmt": metric.fmt,
                           "first": a, "second": b, "factor": None, "p": None, "worse": False}
    if not a or not b:
        return row
    ma, mb = statistics.median(a), statistics.median(b)
    if metric.higher_is_better:
        row["factor"] = mb / ma if ma > 0 else None
    else:
        row["factor"] = ma / mb if mb > 0 else None
    row["p"] = p_behind(a, b, metric.higher_is_better)
    row["worse"] = row["p"] < ALPHA
    return row


def _cell(values: list[float], fmt: str, unit: str) -> str:
    if not values:
        return "–"
    text = fmt.format(statistics.median(values)) + (f" {unit}" if unit else "")
    if len(values) > 1:
        text += f" [{fmt.format(min(values))}–{fmt.format(max(values))}]"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])  # type: ignore[union-attr]
    ap.add_argument("first", help="the commit before (e.g. 2cf8ded)")
    ap.add_argument("second", help="the commit after (e.g. HEAD)")
    ap.add_argument("--only", help="comma-separated measurement names or prefixes")
    ap.add_argument("--reps", type=int, default=None, help="default 5, 1 with --quick")
    ap.add_argument("--quick", action="store_true", help="run_all's smaller sizes")
    a = ap.parse_args()
    reps = a.reps if a.reps is not None else (1 if a.quick else 5)
    selected = run_all.measurements()
    if a.only:
        wanted = [w.strip() for w in a.only.split(",") if w.strip()]
        selected = [m for m in selected if any(m.name.startswith(w) for w in wanted)]
        if not selected:
            ap.error(f"--only {a.only!r} matches no measurement")
    command = " ".join(["python", "benchmarks/compare_trees.py", *sys.argv[1:]])
    sampler = run_all.LoadSampler()
    sampler.start()
    rows: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nbsched-trees-") as tmp:
        (first, tree1), (second, tree2) = export(a.first, tmp), export(a.second, tmp)
        sides = [(first, tree1), (second, tree2)]
        for m in selected:
            got: dict[str, list[dict[str, Any]]] = {first: [], second: []}
            for rep in range(reps):
                for commit, tree in sides if rep % 2 == 0 else reversed(sides):
                    c.log(f"[{time.strftime('%H:%M:%S')}] {m.name} {rep + 1}/{reps} {commit[:8]}")
                    out = run_in(tree, m, a.quick)
                    if "error" in out:
                        c.log(f"    ERROR: {out['error'][:500]}")
                    got[commit].append(out)
                    raw.append({"commit": commit, "measurement": m.name, "rep": rep, **out})
            for metric in m.metrics:
                values = {
                    k: [metric.get(r["results"]) for r in runs if "results" in r]
                    for k, runs in got.items()
                }
                rows.append(compare(metric, values[first], values[second]))
    load = sampler.stop()
    lines = [
        f"| measurement | {first[:8]} | {second[:8]} | factor | p | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        factor = "–" if r["factor"] is None else f"{r['factor']:,.2f}×"
        p = "–" if r["p"] is None else f"{r['p']:.3f}"
        lines.append(
            f"| {r['metric']} | {_cell(r['first'], r['fmt'], r['unit'])} | "
            f"{_cell(r['second'], r['fmt'], r['unit'])} | {factor} | {p} | "
            f"{'worse' if r['worse'] else ''} |"
        )
    text = "\n".join(lines)
    print(f"\n{command}\nload average (1 min) during the run: {load}\n\n{text}")
    os.makedirs(OUT, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(OUT, f"compare-{stamp}.json"), "w") as f:
        json.dump({"command": command, "load": load, "rows": rows, "raw": raw}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
