"""The widget panel's cost: N jobs firing every second, with and without an open panel.

Each mode runs in its own fresh process (``--mode off|on``); without ``--mode`` this script
runs both and prints them side by side. Over ``--seconds`` of wall time, after a settle, it
measures:

* ``cpu_pct``: CPU of the whole process (every thread), percent of one core;
* ``panel_cpu_pct``: CPU of the panel's refresher thread alone (``nbsched-panel``);
* ``runs_per_s``: job bodies that ran (does the panel slow the jobs down?);
* ``msgs_per_s`` / ``kb_per_s``: comm messages the widgets sent and their JSON size -- what
  a kernel would publish on IOPub. Widgets get a counting comm in place of a kernel's
  (``comm.create_comm`` is the hook ipywidgets calls), so every message is counted;
* ``main_lag_p50_ms`` / ``main_lag_p99_ms``: how late the main thread (the kernel's shell
  thread, where cells run) wakes from 10 ms sleeps: a GIL-starved thread would show it.

Usage: python bench_panel.py [--n 1000] [--seconds 10] [--store memory|sqlite]
       [--tab upcoming|history|timeline] [--mode on|off]
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as c  # noqa: E402

_COUNT = itertools.count()


def tick() -> None:
    """The job body: count, nothing else."""
    next(_COUNT)


def _counted() -> int:
    # itertools.count has no peek: its repr holds the next value
    return int(repr(_COUNT)[6:-1])


class _Counter:
    messages = 0
    bytes = 0


def _counting_comms() -> None:
    import comm
    from comm.base_comm import BaseComm

    class CountingComm(BaseComm):
        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                        buffers: Any = None, **keys: Any) -> None:
            _Counter.messages += 1
            _Counter.bytes += len(json.dumps(data or {}, default=str))

    comm.create_comm = lambda *a, **k: CountingComm(*a, **k)


TABS = ("upcoming", "history", "timeline")


def measure(mode: str, n: int, seconds: float, store: str, tab: str) -> dict[str, Any]:
    from nbsched import IntervalTrigger

    c.quiet_logs()
    path = c.db_path("panel")
    c.rm_db(path)
    sched = c.nbsched_scheduler(store, path, workers=8)
    sched.start()
    start = c.utc_dt(time.time() + 1.0)
    for i in range(n):
        sched.add_job(tick, IntervalTrigger(1, start=start), name=f"job{i:04d}")
    panel = None
    if mode == "on":
        _counting_comms()
        from nbsched.panel import SchedulerPanel

        panel = SchedulerPanel.of(sched)
        panel.view.tabs.selected_index = TABS.index(tab)  # as if clicked in the front end
    time.sleep(3)  # settle: the first waves, the panel's first renders
    panel_thread = c.find_thread("nbsched-panel")
    panel_cpu = c.ThreadCPU(panel_thread) if panel_thread else None
    cpu0, runs0 = c.process_cpu(), _counted()
    pcpu0 = panel_cpu.seconds() if panel_cpu else 0.0
    msgs0, bytes0 = _Counter.messages, _Counter.bytes
    lags: list[float] = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        before = time.perf_counter()
        time.sleep(0.01)
        lags.append(time.perf_counter() - before - 0.01)
    wall = time.perf_counter() - t0
    results = {
        "cpu_pct": round(100 * (c.process_cpu() - cpu0) / wall, 1),
        "panel_cpu_pct": round(100 * ((panel_cpu.seconds() if panel_cpu else 0.0) - pcpu0)
                               / wall, 2),
        "runs_per_s": round((_counted() - runs0) / wall, 1),
        "msgs_per_s": round((_Counter.messages - msgs0) / wall, 1),
        "kb_per_s": round((_Counter.bytes - bytes0) / wall / 1024, 2),
        "renders_per_s": 0.0,
        "main_lag_p50_ms": round(1000 * (c.percentile(lags, 50) or 0.0), 2),
        "main_lag_p99_ms": round(1000 * (c.percentile(lags, 99) or 0.0), 2),
    }
    if panel is not None:
        results["renders_per_s"] = round(panel.controller.renders / (wall + 3), 2)
        panel.close()
    sched.shutdown(wait=False)
    c.rm_db(path)
    return results


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])  # type: ignore[union-attr]
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    ap.add_argument("--mode", choices=["on", "off"])
    ap.add_argument("--tab", choices=TABS, default="upcoming", help="the panel tab shown")
    a = ap.parse_args()
    params = {"n": a.n, "seconds": a.seconds, "store": a.store, "tab": a.tab}
    if a.mode is not None:
        c.emit("panel", "nbsched", {**params, "panel": a.mode},
               measure(a.mode, a.n, a.seconds, a.store, a.tab))
        return
    rows = {}
    for mode in ("off", "on"):
        cmd = [sys.executable, __file__, "--mode", mode, "--n", str(a.n),
               "--seconds", str(a.seconds), "--store", a.store, "--tab", a.tab]
        line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        out = json.loads(line.strip().splitlines()[-1])
        print(json.dumps(out, sort_keys=True))
        rows[mode] = out["results"]
    keys = list(rows["on"])
    print(f"\n{a.n} jobs every 1 s, {a.seconds:g} s measured, {a.store} store, "
          f"{a.tab} tab shown")
    print(f"{'':18}{'no panel':>12}{'panel open':>12}")
    for k in keys:
        print(f"{k:18}{rows['off'][k]:>12}{rows['on'][k]:>12}")


if __name__ == "__main__":
    main()
