"""Registry transfer speed against floors measured in the same run.

    python bench/upload_speed.py [MB] [FILES]
    # targets: local upload and download of MB (default 500) within 2x `cp -r` of the same folder (FILES=0: this alone);
    #          an unchanged re-upload (--bump) of FILES (default 10,000) small files to S3 (moto) within 1.5x of
    #          hashing them once plus one listing of the store

Whole CLI processes; moto runs in its own process.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, fresh_home
from shared_cache import start_moto

ROUNDS = 7

IN_PROCESS = """
import os, sys, time
import registry_cli.core.manifest  # start-up, as for the CLI: not part of the upload
from registry_cli.core.registry import Registry
os.sync()
t0 = time.perf_counter()
Registry().upload(sys.argv[1])
print(time.perf_counter() - t0)
"""


def cli(env: dict[str, str], *args: str) -> float:
    os.sync()
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "registry_cli", *args], env=env, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - t0


def timed(fn: object) -> float:
    os.sync()  # each measurement starts with no dirty pages: the last one's writeback must not throttle this one
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def folder(path: Path, name: str, files: dict[str, int]) -> Path:
    path.mkdir(parents=True)
    (path / "metadata.json").write_text(f'{{"name": "{name}", "version": "1.0.0", "category": "dataset"}}')
    for rel, size in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_bytes(os.urandom(size))
    return path


def main() -> None:
    import boto3

    mb = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    n_small = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    home = fresh_home()
    base = {**os.environ, "PYTHONPATH": str(ROOT), "NEARAI_NAMESPACE": "bench"}

    # local: a mix of large (multi-chunk) and medium files
    sizes = {f"big/{i}.bin": 64 * 2**20 for i in range(mb // 128)}
    sizes.update({f"mid/{i}.bin": 2**20 for i in range(mb - 64 * len(sizes))})
    src = folder(home / "src", "bulk", sizes)
    t_start = cli(base, "registry", "list")  # the CLI's start-up, part of every command below

    def sha_all() -> None:  # the hashing any content-addressed copy must do, on every core
        from concurrent.futures import ThreadPoolExecutor

        def one(p: Path) -> None:
            with open(p, "rb") as f:
                hashlib.file_digest(f, "sha256")

        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(one, [p for p in src.rglob("*") if p.is_file()]))

    # Interleaved rounds, each measurement's output removed right after it: writing into memory this machine has
    # not touched yet costs ~1.5 s per 500 MB here (the hypervisor backs each page on first touch) against
    # 0.16-0.18 s into memory freed a moment ago, so a bench that keeps its outputs measures which operation got
    # fresh memory. Round 0 is a warm-up (not counted); the order alternates between rounds.
    reader_store = home / "store-home"
    cli({**base, "NEARAI_HOME": str(reader_store)}, "registry", "upload", str(src))  # what every download reads

    def copy() -> float:
        t = timed(functools.partial(shutil.copytree, src, home / "cp"))
        shutil.rmtree(home / "cp")
        return t

    def upload() -> float:
        t = cli({**base, "NEARAI_HOME": str(home / "up")}, "registry", "upload", str(src))
        shutil.rmtree(home / "up")
        return t

    def download() -> float:
        t = cli({**base, "NEARAI_HOME": str(home / "reader"), "NEARAI_STORE": str(reader_store / "store")},
                "registry", "download", "bench/bulk/1.0.0")
        shutil.rmtree(home / "reader")
        return t

    tiny = folder(home / "tiny", "tiny", {})  # metadata.json alone: what every upload costs whatever its size

    def fixed() -> float:
        t = cli({**base, "NEARAI_HOME": str(home / "fixed")}, "registry", "upload", str(tiny))
        shutil.rmtree(home / "fixed")
        return t

    def in_process() -> float:
        env = {**base, "NEARAI_HOME": str(home / "inproc")}
        t = float(subprocess.run([sys.executable, "-c", IN_PROCESS, str(src)], cwd=ROOT, check=True, env=env,
                                 capture_output=True, text=True).stdout)
        shutil.rmtree(home / "inproc")
        return t

    runs: dict[str, list[float]] = {"cp": [], "up": [], "down": [], "in": [], "sha": [], "fixed": []}
    steps = [("cp", copy), ("up", upload), ("down", download), ("in", in_process), ("sha", lambda: timed(sha_all)),
             ("fixed", fixed)]
    rounds = []
    for i in range(ROUNDS + 1):
        got = {name: fn() for name, fn in (steps if i % 2 else steps[::-1])}
        if i:
            for name, t in got.items():
                runs[name].append(t)
            rounds.append(f"{got['up'] / got['cp']:.1f}x/{got['down'] / got['cp']:.1f}x")
    t_cp, t_up, t_down, t_in, t_sha, t_fixed = (statistics.median(runs[k]) for k in runs)

    # S3: an unchanged re-upload of many small files (FILES=0: the local part alone)
    t_first = t_floor = t_again = 0.0
    if n_small:
        moto, endpoint = start_moto()
        try:
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t",
                         aws_secret_access_key="t").create_bucket(Bucket="uploads")
            s3 = {**base, "NEARAI_HOME": str(home / "s3home"), "NEARAI_STORE": "s3://uploads/reg",
                  "NEARAI_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
                  "AWS_DEFAULT_REGION": "us-east-1"}
            small = folder(home / "small", "many", {f"d{i % 100}/f{i}.txt": 1024 for i in range(n_small)})
            t_first = cli(s3, "registry", "upload", str(small))

            def floor() -> None:
                for p in small.rglob("*"):
                    if p.is_file():
                        hashlib.sha256(p.read_bytes()).hexdigest()
                client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t",
                                      aws_secret_access_key="t")
                for _ in client.get_paginator("list_objects_v2").paginate(Bucket="uploads", Prefix="reg/blobs/"):
                    pass

            t_floor = timed(floor)
            t_again = cli(s3, "registry", "upload", str(small), "--bump")
        finally:
            moto.terminate()
    print(f"cp -r of {mb} MB:                           {t_cp:.2f} s  (median of {ROUNDS} rounds after a warm-up; "
          f"upload/copy and download/copy by round: {' '.join(rounds)}; best copy {min(runs['cp']):.2f} s)")
    print(f"registry upload, local store:             {t_up:.2f} s  ({t_up / t_cp:.2f}x cp -r; target <= 2x; "
          f"best {min(runs['up']):.2f} s)")
    print(f"registry download, local store:           {t_down:.2f} s  ({t_down / t_cp:.2f}x cp -r; target <= 2x; "
          f"best {min(runs['down']):.2f} s)")
    print(f"CLI start-up (`registry list`):           {t_start:.2f} s  ({t_start / t_cp:.2f}x cp -r)")
    print(f"an upload of metadata.json alone:         {t_fixed:.2f} s  ({t_fixed / t_cp:.2f}x cp -r): what any upload "
          f"costs; the upload less it: {(t_up - t_fixed) / t_cp:.2f}x cp -r")
    print(f"upload in-process (imports done):        {t_in:.2f} s  ({t_in / t_cp:.2f}x cp -r)")
    print(f"sha256 of the folder on every core:      {t_sha:.2f} s  ({t_sha / t_cp:.2f}x cp -r)")
    if not n_small:
        return
    print(f"first upload of {n_small} small files to S3:  {t_first:.2f} s")
    print(f"floor: hash them once + list the store:   {t_floor:.2f} s")
    print(f"unchanged re-upload (--bump):             {t_again:.2f} s  ({t_again / t_floor:.2f}x; target <= 1.5x)")


if __name__ == "__main__":
    main()
