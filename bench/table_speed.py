"""`evaluation table` over 10,000 evaluation entries in the embedded store: cold (manifests read from the store)
and warm (immutable manifests served from the local cache). Target: warm <= 2 s.

    python bench/table_speed.py [N]
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timezone

from _common import ROOT, fresh_home


def populate(n: int) -> None:
    from evaluation import EVALUATION_SCHEMA
    from registry_cli.manifest import Manifest
    from registry_cli.registry import Registry

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


def cli_table() -> float:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "registry_cli", "evaluation", "table", "--format=csv",
                          "--num_columns=10"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    elapsed = time.perf_counter() - t0
    assert out.count("\n") > 1000, out[:200]
    return elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    home = fresh_home()
    t0 = time.perf_counter()
    populate(n)
    t_pop = time.perf_counter() - t0
    (home / "cache" / "objects.sqlite").unlink(missing_ok=True)  # cold: nothing cached locally
    t_cold = cli_table()
    t_warm = min(cli_table() for _ in range(3))
    print(f"published {n} evaluation entries in {t_pop:.1f} s")
    print(f"evaluation table, cold cache: {t_cold:.2f} s")
    print(f"evaluation table, warm:       {t_warm:.2f} s  (target <= 2 s; whole CLI process)")


if __name__ == "__main__":
    main()
