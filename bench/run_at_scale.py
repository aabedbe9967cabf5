"""Issue 11's per-datum targets, whole processes against the pinned 50 ms server (one core for it, one for clients):

- a computed run of N datums (default 10,000) at 256 concurrent: request phase <= 1.3x the bare aiohttp client,
  CPU per datum <= 1.5x the client's, peak memory <= 120 MB;
- the litellm path (NEARAI_INFERENCE_BACKEND=litellm) at 64 concurrent: CPU per datum <= 2x the direct path's;
- a fully cached rerun of M datums (default 100,000): <= 0.4 s and <= 150 MB, <= 3x a pyarrow scan of the dataset
  (the rerun's kept sum answers: `execution.settled`); the same without the sum is shown too.

CPU per datum of a CLI run is its CPU minus that of a fully cached rerun of the same datums (start-up, imports and
dataset loading are not per datum); the bare client's is its CPU minus that of loading the dataset alone. For the
litellm and direct paths it is the slope between runs of 1,000 and 5,000 datums, so that start-up and importing
litellm (2-4 s of CPU, varying by more between runs than 1,000 datums cost) cancel out.

    python bench/run_at_scale.py [N] [M]
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

from _common import ROOT, fresh_home, start_server

# Runs argv as its grandchild and writes that one's rusage: a process started from this (large) one counts this
# one's memory in its peak (the kernel keeps the larger of the memory it had before and after exec), a process
# forked from this small launcher does not.
LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, u = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump([os.waitstatus_to_exitcode(status), u.ru_utime + u.ru_stime, u.ru_maxrss], f)
"""


def child(argv: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS MB, stdout) of one process running ``argv`` (its own rusage, from wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".json") as usage:
        argv = [os.path.join(ROOT, a) if a.startswith("bench/") else a for a in argv]
        launcher = [sys.executable, "-c", LAUNCHER, usage.name, *argv]
        t0 = time.perf_counter()
        pid = os.posix_spawn(launcher[0], launcher, env, file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                                                       (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
        os.waitpid(pid, 0)
        wall = time.perf_counter() - t0
        code, cpu, maxrss = json.load(usage)
        if code:
            err.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed:\n{err.read().decode()[-2000:]}")
        out.seek(0)
        return wall, cpu, maxrss / 1024, out.read().decode()


def final_score(stdout: str) -> str:
    return stdout.split("Final score: ")[1].split()[0]


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
    more = build(home / "more" / "3_digit_addition", 5000)
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
        _, cached_cpu, _, again = child(run, env)
        score = final_score(out)
        assert final_score(again) == score and f"{n} cached" in again, again  # caching never changes a score
        # litellm against the direct path at 64: CPU per 1,000 datums as the slope from 1,000 to 5,000 datums
        def slope(backend: str) -> float:
            cpus = []
            for data in (small, more):
                lite = [py, "-m", "registry_cli", "benchmark", "run", str(data), "ThreeDigitAdditionSolver", "--model=m",
                        f"--api_base={url}", "--max_concurrent=64", "--quiet", "--force"]
                cpus.append(child(lite, {**env, "NEARAI_INFERENCE_BACKEND": backend})[1])
            return (cpus[1] - cpus[0]) / 4

        per_direct, per_lite = slope("openai"), slope("litellm")
    finally:
        srv.terminate()
    fast, url0 = start_server(0.0)
    try:
        fill = [py, "-m", "registry_cli", "benchmark", "run", str(big), "ThreeDigitAdditionSolver", "--model=m",
                f"--api_base={url0}", "--max_concurrent=64", "--quiet"]
        _, _, _, computed = child(fill, env)
        big_wall, _, big_rss, big_out = child(fill, env)
        assert f"{m} cached" in big_out and final_score(big_out) == final_score(computed), big_out
        shutil.rmtree(home / "cache" / "results" / "settled")  # as on a machine whose packs came from the store
        read_wall, _, read_rss, read_out = child(fill, env)
        assert f"{m} cached" in read_out and final_score(read_out) == final_score(computed), read_out
        scan = ("import glob, pyarrow as pa; print(sum(pa.ipc.open_stream(f).read_all().num_rows "
                f"for f in glob.glob({str(big)!r} + '/*.arrow')))")
        scan_wall, _, scan_rss, scanned = child([py, "-c", scan], env)
        assert int(scanned) == m, scanned
    finally:
        fast.terminate()
    per_cli = (cpu - cached_cpu) / n * 1000
    per_bare = (bare_cpu - load_cpu) / n * 1000
    print(f"computed run, {n} datums @256 (score {score}):")
    print(f"  request phase: {cli_phase:.2f} s vs bare {bare_phase:.2f} s  ({cli_phase / bare_phase:.2f}x; <= 1.3x)")
    print(f"  CPU per datum: {per_cli:.3f} ms vs bare {per_bare:.3f} ms  ({per_cli / per_bare:.2f}x; <= 1.5x)")
    print(f"  peak memory:   {rss:.0f} MB (bare client {bare_rss:.0f} MB; <= 120 MB)")
    print(f"litellm path, CPU per 1000 datums @64: {per_lite:.2f} s vs direct {per_direct:.2f} s "
          f"({per_lite / per_direct:.2f}x; <= 2x)")
    print(f"fully cached rerun, {m} datums: {big_wall:.2f} s, {big_rss:.0f} MB  (<= 0.4 s, <= 150 MB)")
    print(f"  vs a pyarrow scan of the dataset: {scan_wall:.2f} s, {scan_rss:.0f} MB  "
          f"({big_wall / scan_wall:.2f}x, {big_rss / scan_rss:.2f}x; <= 3x)")
    print(f"  without its kept sum (every result read, as after packs fetched from the store): {read_wall:.2f} s, "
          f"{read_rss:.0f} MB")


if __name__ == "__main__":
    main()
