"""Ray as the engine for more than one machine: one benchmark's datums on a local Ray cluster of 1 worker process,
then of 4, against a server that answers each request after a delay, with each worker holding a fixed number of
connections (``--max_concurrent``): the client side bounds throughput, as it does when every machine brings its own
connections. Token authentication is on (as Ray >= 2.59 defaults to), the token given only as RAY_AUTH_TOKEN.

    python bench/ray_scale.py [N]     # N datums (default 4,800), 8 connections a worker, 100 ms a request
    # target: throughput with 4 workers >= 3x one worker

Each cluster answers a small warm-up benchmark first (its worker processes import the engine once, as a long-lived
cluster's have). Every run has its own store prefix, so nothing is cached; scores must be equal, and every result
must be in the store exactly once.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, fresh_home, start_server
from shared_cache import free_port, start_moto

CONNECTIONS, LATENCY = 8, 0.1


def start_ray(workers: int, token: str) -> tuple[str, Path, dict[str, str]]:
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0"}
    port, temp = free_port(), Path(f"/tmp/rb{os.getpid()}")
    subprocess.run([str(Path(sys.executable).parent / "ray"), "start", "--head", f"--port={port}",
                    f"--num-cpus={workers}", "--include-dashboard=false",
                    f"--temp-dir={temp}", "--disable-usage-stats"], env=env, check=True, capture_output=True)
    return f"127.0.0.1:{port}", temp, env


def stop_ray(temp: Path, env: dict[str, str]) -> None:
    subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], env=env, capture_output=True)
    shutil.rmtree(temp, ignore_errors=True)


def stored_keys(s3: object, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="shared", Prefix=f"{prefix}/cache/"):  # type: ignore[attr-defined]
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket="shared", Key=obj["Key"])["Body"].read()  # type: ignore[attr-defined]
            keys += [json.loads(line)["value"]["key"] for line in body.splitlines()]
    return keys


def timed(env: dict[str, str], *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "registry_cli", *args], env=env, cwd=ROOT, capture_output=True,
                         text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return time.perf_counter() - t0, out.stdout.split("Final score: ")[1].split()[0]


def main() -> None:
    import boto3

    from examples.make_addition_dataset import build

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4_800
    home = fresh_home()
    ds, warm = build(home / "3_digit_addition", n), build(home / "warm" / "3_digit_addition", 64, seed=7)
    srv, url = start_server(LATENCY)
    moto, endpoint = start_moto()
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t",
                      aws_secret_access_key="t")
    s3.create_bucket(Bucket="shared")
    token = secrets.token_hex(32)
    base = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
            "AWS_DEFAULT_REGION": "us-east-1", "NEARAI_S3_ENDPOINT_URL": endpoint, "HOME": str(home),
            "RAY_AUTH_TOKEN": token}
    args = ("ThreeDigitAdditionSolver", "--model=m", f"--api_base={url}", f"--max_concurrent={CONNECTIONS}",
            "--quiet")
    times: dict[int, float] = {}
    scores = set()
    try:
        local = {**base, "NEARAI_HOME": str(home / "local"), "NEARAI_STORE": "s3://shared/local"}
        t_local, score = timed(local, "benchmark", "run", str(ds), *args)
        scores.add(score)
        for workers in (1, 4):
            address, temp, ray_env = start_ray(workers, token)
            try:
                env = {**base, "NEARAI_HOME": str(home / f"w{workers}"), "NEARAI_STORE": f"s3://shared/w{workers}"}
                timed(env, "benchmark", "run", str(warm), *args, f"--ray_address={address}")
                shutil.rmtree(home / f"w{workers}")
                times[workers], score = timed(env, "benchmark", "run", str(ds), *args, f"--ray_address={address}")
                scores.add(score)
                keys = stored_keys(s3, f"w{workers}")
                assert len(set(keys)) == len(keys) == n + 64, (len(set(keys)), len(keys))  # each result once
            finally:
                stop_ray(temp, ray_env)
    finally:
        srv.terminate()
        moto.terminate()
    assert len(scores) == 1, scores
    one, four = times[1], times[4]
    print(f"{n} datums, {CONNECTIONS} connections a worker, {LATENCY * 1000:.0f} ms a request; whole CLI processes")
    print(f"local run (no Ray, {CONNECTIONS} connections):   {t_local:.2f} s")
    print(f"Ray, 1 worker:                        {one:.2f} s  ({n / one:.0f} datums/s; {one / t_local:.2f}x local)")
    print(f"Ray, 4 workers:                       {four:.2f} s  ({n / four:.0f} datums/s)")
    print(f"throughput, 4 workers vs 1:           {one / four:.2f}x  (target >= 3x)")


if __name__ == "__main__":
    main()
