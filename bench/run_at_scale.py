"""Issue 11's per-datum targets, whole processes against the pinned 50 ms server (one core for it, one for clients):

- a computed run of N datums (default 10,000) at 256 concurrent: request phase <= 1.3x the bare aiohttp client,
  CPU per datum <= 1.5x the client's, peak memory <= 120 MB;
- the litellm path (NEARAI_INFERENCE_BACKEND=litellm), 1,000 datums at 64: CPU per datum <= 2x the direct path's;
- a fully cached rerun of M datums (default 100,000): <= 2 s and <= 250 MB.

CPU per datum of a CLI run is its CPU minus that of a fully cached rerun of the same datums (start-up, imports and
dataset loading are not per datum); the bare client's is its CPU minus that of loading the dataset alone.

    python bench/run_at_scale.py [N] [M]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from _common import ROOT, fresh_home, start_server


def child(argv: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS MB, stdout) of one child process (its own rusage, from wait4)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed:\n{err.read().decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def phase(stdout: str) -> float:
    """The request phase the CLI reports: "... computed in 2.31s"."""
    return float(stdout.split(" computed in ")[1].split("s")[0])


def main() -> None:
    from examples.make_addition_dataset import build

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    home = fresh_home()
    ds = build(home / "3_digit_addition", n)
    big = build(home / "big" / "3_digit_addition", m)
    small = build(home / "small" / "3_digit_addition", 1000)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    py = sys.executable
    srv, url = start_server(0.05, pin=True)
    try:
        run = [py, "-m", "registry_cli", "benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m",
               f"--api_base={url}", "--max_concurrent=256", "--quiet"]
        _, bare_cpu, bare_rss, out = child([py, "bench/bare_client.py", url, str(ds), "256"], env)
        bare_phase = float(out)
        _, load_cpu, _, _ = child([py, "-c", f"import datasets; datasets.load_from_disk({str(ds)!r}).to_list()"], env)
        _, cpu, rss, out = child(run, env)
        cli_phase = phase(out)
        _, cached_cpu, _, _ = child(run, env)
        score = out.split("Final score: ")[1].split()[0]
        # litellm against the direct path, 1,000 datums at 64
        lite = [py, "-m", "registry_cli", "benchmark", "run", str(small), "ThreeDigitAdditionSolver", "--model=m",
                f"--api_base={url}", "--max_concurrent=64", "--quiet", "--force"]
        _, direct_cpu, _, _ = child(lite, env)
        _, lite_cpu, _, _ = child(lite, {**env, "NEARAI_INFERENCE_BACKEND": "litellm"})
        _, small_cached_cpu, _, _ = child(lite[:-1], env)
    finally:
        srv.terminate()
    fast, url0 = start_server(0.0)
    try:
        fill = [py, "-m", "registry_cli", "benchmark", "run", str(big), "ThreeDigitAdditionSolver", "--model=m",
                f"--api_base={url0}", "--max_concurrent=64", "--quiet"]
        child(fill, env)
        big_wall, _, big_rss, big_out = child(fill, env)
        assert f"{m} cached" in big_out, big_out
    finally:
        fast.terminate()
    per_cli = (cpu - cached_cpu) / n * 1000
    per_bare = (bare_cpu - load_cpu) / n * 1000
    per_direct = (direct_cpu - small_cached_cpu)
    per_lite = (lite_cpu - small_cached_cpu)
    print(f"computed run, {n} datums @256 (score {score}):")
    print(f"  request phase: {cli_phase:.2f} s vs bare {bare_phase:.2f} s  ({cli_phase / bare_phase:.2f}x; <= 1.3x)")
    print(f"  CPU per datum: {per_cli:.3f} ms vs bare {per_bare:.3f} ms  ({per_cli / per_bare:.2f}x; <= 1.5x)")
    print(f"  peak memory:   {rss:.0f} MB (bare client {bare_rss:.0f} MB; <= 120 MB)")
    print(f"litellm path, 1000 datums @64: CPU {per_lite:.2f} s vs direct {per_direct:.2f} s "
          f"({per_lite / per_direct:.2f}x; <= 2x)")
    print(f"fully cached rerun, {m} datums: {big_wall:.2f} s, {big_rss:.0f} MB  (<= 2 s, <= 250 MB)")


if __name__ == "__main__":
    main()
