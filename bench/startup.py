"""Start-up time of `nearai --help` and `nearai registry list` (embedded store), median of N runs.

    python bench/startup.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from _common import ROOT, fresh_home


def timed(args: list[str], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "registry_cli", *args], cwd=ROOT, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    fresh_home()
    bare = timed(["--version-does-not-matter"], 1)  # warm the OS file cache
    t_py = statistics.median(
        [(lambda t0: (subprocess.run([sys.executable, "-c", "pass"]), time.perf_counter() - t0)[1])(time.perf_counter())
         for _ in range(n)])
    t_help = timed(["--help"], n)
    t_list = timed(["registry", "list"], n)
    code = ("import sys; from registry_cli.shell.cli import main; main(['registry', 'list']);"
            "print(sorted(m for m in ('boto3','botocore','datasets','litellm','aiohttp','pyarrow') if m in sys.modules))")
    heavy = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    del bare
    print(f"python -c pass       {t_py * 1000:7.0f} ms")
    print(f"nearai --help        {t_help * 1000:7.0f} ms")
    print(f"nearai registry list {t_list * 1000:7.0f} ms")
    print(f"heavy modules imported by `registry list`: {heavy.splitlines()[-1] if heavy else '?'}")


if __name__ == "__main__":
    main()
