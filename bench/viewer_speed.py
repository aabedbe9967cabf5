"""`nearai view` at scale: N (default 50,000) evaluation entries and one evaluation of M (default 100,000) datums
in the embedded store, the viewer started as a real process, its pages asked for over HTTP.

Timed, each against a floor measured in the same run:
- the table's first page, right after the viewer starts (the kept pivot of `evaluation table` in place, as after
  any `evaluation table`), against the floor of one process reading that kept pivot (what any page built from it
  reads at least);
- the big evaluation's first page (its solutions file indexed, not parsed) and a filtered, searched page, against
  the floor of one pass reading the solutions file;
- the viewer's peak memory (VmHWM) after all of it. Issue 26's targets: <= 1 s per page, memory within the table's
  budget (150 MB).

    python bench/viewer_speed.py [N] [M]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from _common import ROOT, fresh_home
from run_at_scale import child
from table_speed import populate

DATUM = {"agent": None, "error": None, "info": {"answer": "", "expected": ""}, "key": "", "metrics": {},
         "run_folder": None, "usage": {"prompt_tokens": 23, "completion_tokens": 3, "cost": 0.0}}


def big_evaluation(m: int) -> str:
    """An evaluation entry of ``m`` results, shaped as `--record` writes them; its name."""
    from evaluation import EVALUATION_SCHEMA, SOLUTIONS_FILE
    from registry_cli.core.manifest import FileEntry, Manifest
    from registry_cli.core.registry import Registry

    lines = []
    for i in range(m):
        a, b = i % 900 + 100, (i * 7) % 900 + 100
        row = {**DATUM, "datum_hash": f"{i:064x}", "index": i, "repeat": 0, "status": "passed" if i % 5 else "failed",
               "input": {"input": f"{a} + {b}", "output": str(a + b)},
               "info": {"answer": str(a + b + (0 if i % 5 else 1)), "expected": str(a + b)}, "key": f"{m + i:064x}"}
        lines.append(json.dumps(row, sort_keys=True))
    data = ("\n".join(lines) + "\n").encode()
    reg = Registry()
    name = "evaluation_big_model_m"
    details = {"schema": EVALUATION_SCHEMA, "benchmark": "big", "model": "provider/m", "agent": "",
               "evaluation_key": "f" * 64, "namespace": "viewbench",
               "metrics": {"score": 0.8, "n": m, "passed": m * 4 // 5, "failed": m // 5, "errored": 0}}
    meta = {"name": name, "version": "0.0.1", "category": "evaluation", "description": "", "tags": [],
            "details": details, "show_entry": True}
    files = [FileEntry(path=SOLUTIONS_FILE, sha256=reg.put_blob(data), size=len(data))]
    reg.publish_manifest(Manifest(namespace="viewbench", name=name, version="0.0.1", metadata=meta, files=files,
                                  created_at=datetime.now(timezone.utc).isoformat()))
    return f"viewbench/{name}/0.0.1"  # not "bench/...": the bench launcher takes that for a script path


def timed_get(url: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as r:
        body = r.read().decode()
    return time.perf_counter() - t0, body


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


FLOOR_PIVOT = ("import sys, pathlib; from registry_cli.caches.snapshots import read_snapshot; "
               "[read_snapshot(p) for p in pathlib.Path(sys.argv[1]).glob('*.bin')]")
FLOOR_SCAN = "import sys; f = open(sys.argv[1], 'rb'); print(sum(1 for _ in f))"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    home = fresh_home()
    t0 = time.perf_counter()
    populate(n)
    entry = big_evaluation(m)
    print(f"published {n} evaluation entries and one of {m} datums in {time.perf_counter() - t0:.1f} s")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child([sys.executable, "-m", "registry_cli", "evaluation", "table", "--format=csv"], env)  # the kept pivot
    child([sys.executable, "-m", "registry_cli", "registry", "download", entry], env)  # the entry's files here
    viewer = subprocess.Popen([sys.executable, "-m", "registry_cli", "view", "--port=0"], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert viewer.stdout is not None
        url = viewer.stdout.readline().split()[2]
        t_table, body = timed_get(url + "/evaluations")
        assert f"of {n + 1} rows" in body.replace(",", ""), body[:500]
        t_table2, _ = timed_get(url + "/evaluations?benchmark=mmlu&sort=mmlu&desc=1&page=3")
        t_open, body = timed_get(f"{url}/evaluation/{entry}")
        assert f"{m} datums" in body, body[:500]
        t_filter, body = timed_get(f"{url}/evaluation/{entry}?status=failed&q=1%2B&page=2")
        t_again, _ = timed_get(f"{url}/evaluation/{entry}?page=1000")
        peak = peak_mb(viewer.pid)
    finally:
        viewer.terminate()
        viewer.wait()
    solutions = next((home / "registry" / "viewbench").glob("evaluation_big_model_m/0.0.1/solutions.jsonl"))
    f_pivot = min(child([sys.executable, "-c", FLOOR_PIVOT, str(home / "cache" / "tables")], env)[0] for _ in range(3))
    f_scan = min(child([sys.executable, "-c", FLOOR_SCAN, str(solutions)], env)[0] for _ in range(3))
    print(f"floor: one process reading the kept pivot: {f_pivot:.2f} s; one pass over the solutions file "
          f"({solutions.stat().st_size / 2**20:.0f} MiB): {f_scan:.2f} s")
    print(f"table, first page after start: {t_table:.2f} s ({t_table / f_pivot:.2f}x floor); "
          f"a filtered, sorted page: {t_table2:.2f} s")
    print(f"evaluation of {m} datums, first open: {t_open:.2f} s ({t_open / f_scan:.2f}x floor); "
          f"filtered and searched: {t_filter:.2f} s ({t_filter / f_scan:.2f}x); page 1000: {t_again:.2f} s")
    print(f"viewer peak memory: {peak:.0f} MB")
    print("targets (issue 26): <= 1 s per page, memory within the table's budget (150 MB)")


if __name__ == "__main__":
    main()
