"""The shared (S3) result cache: a computed run with the store on S3 against the same run on the local store, and a
cold machine fetching every result from a store that already holds them. Whole CLI processes; the moto S3 server
and the 50 ms OpenAI-compatible server each run in their own process.

    python bench/shared_cache.py [N]     # N datums (default 10,000) at 256 concurrent
    # targets: S3 run <= 1.2x the local-store run; cold machine, warm shared cache: <= 3 s for 10,000 results

Scores must be equal in all three runs.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, fresh_home, start_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from moto.server import ThreadedMotoServer; import time; "
                             f"ThreadedMotoServer(ip_address='127.0.0.1', port={port}, verbose=False).start(); "
                             "time.sleep(10**6)"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto did not start")


def run(env: dict[str, str], *args: str) -> tuple[float, str, float]:
    """Wall time, final score line and the child's CPU seconds of one CLI run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "registry_cli", *args], env=env, cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, out.split("Final score: ")[1].split()[0], cpu


def counts(out: str) -> tuple[int, int]:
    """(cached, computed) of a run's "N results: C cached, K computed" line."""
    head = out.split(" results: ")[1]
    return int(head.split(" cached")[0]), int(head.split(", ")[1].split(" computed")[0])


def mid_run(s3: dict[str, str], home: Path, args: list[str], endpoint: str,
            m: int = 3000) -> tuple[float, int, int, int, int, int]:
    """A first machine answers ``m`` datums; a second (its own home) starts the same run once results are in the
    store. (seconds to the first shared pack, results there then, second's cached, second's computed, first's
    computed, m)."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t",
                          aws_secret_access_key="t")
    env = {**s3, "NEARAI_STORE": "s3://shared/mid"}
    cmd = [sys.executable, "-m", "registry_cli", *args, f"--limit={m}", "--max_concurrent=16"]
    started = time.perf_counter()
    first = subprocess.Popen(cmd, env={**env, "NEARAI_HOME": str(home / "mid1")}, cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)

    def stored() -> list[bytes]:
        objects = client.list_objects_v2(Bucket="shared", Prefix="mid/cache/").get("Contents", [])
        return [client.get_object(Bucket="shared", Key=o["Key"])["Body"].read() for o in objects]

    while not stored() and first.poll() is None:
        time.sleep(0.2)
    seen = time.perf_counter() - started
    shared = sum(body.count(b"\n") for body in stored())
    second = subprocess.run(cmd, env={**env, "NEARAI_HOME": str(home / "mid2")}, cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    out, _ = first.communicate()
    b_cached, b_computed = counts(second)
    return seen, shared, b_cached, b_computed, counts(out)[1], m


def main() -> None:
    import boto3

    from examples.make_addition_dataset import build

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    home = fresh_home()
    ds = build(home / "3_digit_addition", n)
    srv, url = start_server(0.05)
    moto, endpoint = start_moto()
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t",
                     aws_secret_access_key="t").create_bucket(Bucket="shared")
        base = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
                "AWS_DEFAULT_REGION": "us-east-1"}
        args = ("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m", f"--api_base={url}",
                "--max_concurrent=256", "--quiet")
        local = {**base, "NEARAI_HOME": str(home / "local")}
        s3 = {**base, "NEARAI_HOME": str(home / "s3"), "NEARAI_STORE": "s3://shared/reg",
              "NEARAI_S3_ENDPOINT_URL": endpoint}
        cold = {**s3, "NEARAI_HOME": str(home / "cold")}
        t_local, score_local, _ = run(local, *args)
        t_s3, score_s3, _ = run(s3, *args)
        t_cold, score_cold, _ = run(cold, *args)
        packs = sum(1 for p in Path(home / "cold").rglob("*.jsonl") if "packs" in p.parts)
        mid = mid_run(s3, home, [a for a in args if a != "--max_concurrent=256"], endpoint)
    finally:
        srv.terminate()
        moto.terminate()
    assert score_local == score_s3 == score_cold, (score_local, score_s3, score_cold)
    print(f"computed run, {n} datums @256, local store:  {t_local:.2f} s")
    print(f"the same with the store on S3 (moto):        {t_s3:.2f} s  ({t_s3 / t_local:.2f}x; target <= 1.2x)")
    print(f"cold machine, every result in the S3 store:  {t_cold:.2f} s  ({packs} pack fetched; target <= 3 s)")
    first, shared, b_cached, b_computed, a_computed, m = mid
    print(f"two machines, {m} datums @16 each, the second started once the first had shared (separate homes):")
    print(f"  first results in the store {first:.1f} s after the first machine started (target <= 10 s behind); "
          f"{shared} there when the second started")
    print(f"  second machine: {b_cached} cached, {b_computed} computed (not there when it started: {m - shared}); "
          f"answers asked in all: {a_computed + b_computed} for {m} datums ({(a_computed + b_computed) / m:.2f}x)")


if __name__ == "__main__":
    main()
