"""`evaluation table` and `registry list` over N (default 10,000) evaluation entries in the embedded store: cold
(nothing of the store cached on this machine) and warm (the catalog and folder listings in place), whole CLI processes,
against a floor: one process that reads every file a listing must read (each ref, and the manifest object of a ref
that does not carry its manifest), and the old layout's floor (each ref and each manifest object). Issue 11's
targets at 50,000: <= 1 s warm, <= 5 s cold, <= 150 MB.

    python bench/table_speed.py [N]
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from _common import ROOT, fresh_home
from run_at_scale import child


def populate(n: int) -> None:
    from evaluation import EVALUATION_SCHEMA
    from registry_cli.core.manifest import Manifest
    from registry_cli.core.registry import Registry

    reg = Registry()
    benchmarks = ["3_digit_addition", "mmlu", "gsm8k", "human_eval"]
    for i in range(n):
        bench = benchmarks[i % 4]
        name = f"evaluation_{bench}_model_m{i // 4}_provider_p{i % 7}"
        details = {"schema": EVALUATION_SCHEMA, "benchmark": bench, "model": f"provider/m{i // 4}", "agent": "",
                   "evaluation_key": f"{i:064x}",  # as `--record` writes it
                   "namespace": "bench", "version": "", "provider": f"p{i % 7}",
                   "metrics": {"score": (i % 97) / 97, "n": 100, "passed": i % 97, "failed": 100 - i % 97,
                               "errored": 0, "stderr": 0.01, "cost": 0.001 * i}}
        meta = {"name": name, "version": "0.0.1", "category": "evaluation", "description": "", "tags": [],
                "details": details, "show_entry": True}
        reg.publish_manifest(Manifest(namespace="bench", name=name, version="0.0.1", metadata=meta, files=[],
                                      created_at=datetime.now(timezone.utc).isoformat()))


FLOOR = """
import json, os, sys
root, both = os.path.join(sys.argv[1], "store"), sys.argv[2] == "both"
n = 0
for d, _, files in os.walk(os.path.join(root, "refs")):
    for f in files:
        ref = json.load(open(os.path.join(d, f)))
        if both or "inline" not in ref:
            digest = ref["manifest"]
            json.load(open(os.path.join(root, "manifests", "sha256", digest[:2], digest + ".json")))
        n += 1
print(n)
"""


def forget(home: Path) -> None:
    """A cold machine: nothing of the store cached locally (object index, catalog, folder listings, kept tables)."""
    for suffix in ("", "-wal", "-shm"):
        (home / "cache" / f"objects.sqlite{suffix}").unlink(missing_ok=True)
    for folder in ("catalog", "listings", "tables"):
        shutil.rmtree(home / "cache" / folder, ignore_errors=True)
    os.sync()  # the store's files as written, with no writeback of them under way to slow the cold run


def cli(*args: str) -> tuple[float, float, str]:
    """(wall s, peak MB, stdout) of one CLI process."""
    wall, _, rss, out = child([sys.executable, "-m", "registry_cli", *args], {**os.environ, "PYTHONPATH": str(ROOT)})
    return wall, rss, out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    home = fresh_home()
    t0 = time.perf_counter()
    populate(n)
    t_pop = time.perf_counter() - t0
    table = ("evaluation", "table", "--format=csv", "--num_columns=10")
    forget(home)
    t_cold, rss_cold, out = cli(*table)
    assert out.count("\n") == n + 1, out[:200]
    t_warm, rss_warm, warm = min(cli(*table) for _ in range(3))
    assert warm == out, "a warm table differs from the cold one"
    t_drawn, rss_drawn, drawn = cli("evaluation", "table")  # the default format, drawn for a terminal
    assert drawn.count("\n") == n + 4, drawn[:300]
    forget(home)
    t_list_cold, rss_list_cold, _ = cli("registry", "list")
    t_list, rss_list, out = min(cli("registry", "list") for _ in range(3))
    assert f"of {n}" in out, out[-300:]
    t_floor = min(child([sys.executable, "-c", FLOOR, str(home), "needed"], dict(os.environ))[0] for _ in range(3))
    t_both = min(child([sys.executable, "-c", FLOOR, str(home), "both"], dict(os.environ))[0] for _ in range(3))
    print(f"published {n} evaluation entries in {t_pop:.1f} s")
    print(f"floor: one process reading every file a listing needs: {t_floor:.2f} s")
    print(f"(one process reading every ref and every manifest object: {t_both:.2f} s)")
    print(f"evaluation table, cold cache: {t_cold:.2f} s ({t_cold / t_floor:.2f}x floor), {rss_cold:.0f} MB")
    print(f"evaluation table, warm:       {t_warm:.2f} s ({t_warm / t_floor:.2f}x floor), {rss_warm:.0f} MB")
    print(f"evaluation table (drawn), warm: {t_drawn:.2f} s ({t_drawn / t_floor:.2f}x floor), {rss_drawn:.0f} MB")
    print(f"registry list, cold cache:    {t_list_cold:.2f} s ({t_list_cold / t_floor:.2f}x floor), {rss_list_cold:.0f} MB")
    print(f"registry list, warm:          {t_list:.2f} s ({t_list / t_floor:.2f}x floor), {rss_list:.0f} MB")
    print("targets (issue 11): <= 1 s warm, <= 5 s cold, <= 150 MB")


if __name__ == "__main__":
    main()
