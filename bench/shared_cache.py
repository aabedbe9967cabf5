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
    finally:
        srv.terminate()
        moto.terminate()
    assert score_local == score_s3 == score_cold, (score_local, score_s3, score_cold)
    print(f"computed run, {n} datums @256, local store:  {t_local:.2f} s")
    print(f"the same with the store on S3 (moto):        {t_s3:.2f} s  ({t_s3 / t_local:.2f}x; target <= 1.2x)")
    print(f"cold machine, every result in the S3 store:  {t_cold:.2f} s  ({packs} pack fetched; target <= 3 s)")


if __name__ == "__main__":
    main()
