"""Fault campaign: N faults of each kind against the real CLI, the moto S3 server behind a fault-injecting proxy
(tests/s3_proxy.py) and a local OpenAI-compatible server; prints tries / survived per kind. Every row must be 100%.

    python bench/fault_campaign.py [N]      # N tries per kind (default 5)

Survived means: the command either succeeded with verified content, or failed with one clear line and left
nothing visible; and the scores equal those of a clean run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from _common import ROOT

from examples.make_addition_dataset import build
from tests.openai_server import FakeOpenAI
from tests.s3_proxy import S3Proxy, flip

Env = dict[str, str]


def cli(env: Env, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def clean_failure(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode != 0 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


class Campaign:
    def __init__(self, moto: str, server: FakeOpenAI, work: Path) -> None:
        self.moto, self.server, self.work = moto, server, work
        self.ds = build(work / "3_digit_addition", 40)

    def env(self, endpoint: str = "", bucket: str = "") -> Env:
        home = self.work / f"home-{uuid.uuid4().hex[:8]}"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("NEARAI_", "AWS_"))}
        return {**base, "NEARAI_HOME": str(home), "NEARAI_NAMESPACE": "camp", "PYTHONPATH": str(ROOT),
                "NEARAI_STORE": f"s3://{bucket or self.bucket()}/reg", "NEARAI_S3_ENDPOINT_URL": endpoint or self.moto,
                "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1",
                "NEARAI_S3_MAX_ATTEMPTS": "3"}

    def bucket(self) -> str:
        import boto3

        name = f"c-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.moto, region_name="us-east-1", aws_access_key_id="t",
                     aws_secret_access_key="t").create_bucket(Bucket=name)
        return name

    def entry(self, name: str) -> Path:
        folder = self.work / f"src-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        (folder / "metadata.json").write_text(f'{{"name": "{name}", "version": "1.0.0", "category": "dataset"}}')
        for i in range(8):
            (folder / f"f{i}.bin").write_bytes(os.urandom(2000 + 97 * i))
        return folder

    def intact(self, env: Env, name: str, src: Path) -> bool:
        """The version is either absent or downloads, verified, with the source's bytes (from a fresh machine)."""
        fresh = {**env, "NEARAI_HOME": str(self.work / f"reader-{uuid.uuid4().hex[:8]}"),
                 "NEARAI_S3_ENDPOINT_URL": self.moto}
        info = cli(fresh, "registry", "info", f"camp/{name}/1.0.0")
        if info.returncode != 0:
            return "not found" in info.stderr
        got = cli(fresh, "registry", "download", f"camp/{name}/1.0.0")
        folder = Path(fresh["NEARAI_HOME"]) / "registry" / "camp" / name / "1.0.0"
        return got.returncode == 0 and all((folder / p.name).read_bytes() == p.read_bytes() for p in src.glob("f*"))

    def score(self, env: Env, *extra: str) -> str:
        out = cli(env, "benchmark", "run", str(self.ds), "ThreeDigitAdditionSolver", "--model=m",
                  f"--api_base={self.server.url}", "--quiet", *extra)
        return out.stdout.split("Final score: ")[1].split()[0] if "Final score: " in out.stdout else "error"

    # ---- the kinds -------------------------------------------------------------------------------------------
    def altered_uploads(self) -> bool:
        """8% of PUT bodies altered on the way."""
        with S3Proxy(self.moto) as proxy:
            rng = random.Random()
            proxy.alter_request = lambda m, p, b: flip(b) if m == "PUT" and rng.random() < 0.08 else b
            env, name, src = self.env(proxy.url), f"e{uuid.uuid4().hex[:6]}", self.entry("x")
            (src / "metadata.json").write_text(f'{{"name": "{name}", "version": "1.0.0", "category": "dataset"}}')
            out = cli(env, "registry", "upload", str(src))
        return (out.returncode == 0 or clean_failure(out)) and self.intact(env, name, src)

    def altered_downloads(self) -> bool:
        """3% of GET responses altered on the way; the machine is not poisoned afterwards."""
        env, name, src = self.env(), f"d{uuid.uuid4().hex[:6]}", self.entry("x")
        (src / "metadata.json").write_text(f'{{"name": "{name}", "version": "1.0.0", "category": "dataset"}}')
        cli(env, "registry", "upload", str(src))
        reader = {**env, "NEARAI_HOME": str(self.work / f"r-{uuid.uuid4().hex[:8]}")}
        with S3Proxy(self.moto) as proxy:
            rng = random.Random()
            proxy.alter_response = lambda m, p, b: flip(b) if m == "GET" and rng.random() < 0.03 else b
            first = cli({**reader, "NEARAI_S3_ENDPOINT_URL": proxy.url}, "registry", "download", f"camp/{name}/1.0.0")
        after = cli(reader, "registry", "download", f"camp/{name}/1.0.0")
        folder = Path(reader["NEARAI_HOME"]) / "registry" / "camp" / name / "1.0.0"
        good = all((folder / p.name).read_bytes() == p.read_bytes() for p in src.glob("f*"))
        return (first.returncode == 0 or clean_failure(first)) and after.returncode == 0 and good

    def ignored_if_none_match(self) -> bool:
        with S3Proxy(self.moto) as proxy:
            proxy.drop_headers = {"if-none-match"}
            env, src = self.env(proxy.url), self.entry(f"n{uuid.uuid4().hex[:6]}")
            out = cli(env, "registry", "upload", str(src))
        return clean_failure(out) and "If-None-Match" in out.stderr

    def flipped_shared_verdicts(self) -> bool:
        """A byte flipped in the shared cache: the second machine's score equals the clean one."""
        env = self.env()
        clean = self.score(env)
        import boto3

        bucket = env["NEARAI_STORE"].split("/")[2]
        s3 = boto3.client("s3", endpoint_url=self.moto, region_name="us-east-1", aws_access_key_id="t",
                          aws_secret_access_key="t")
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix="reg/cache/").get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            s3.put_object(Bucket=bucket, Key=obj["Key"], Body=body.replace(b'"passed":false', b'"passed":true', 1))
        other = {**env, "NEARAI_HOME": str(self.work / f"o-{uuid.uuid4().hex[:8]}")}
        return self.score(other) == clean

    def killed_uploads(self) -> bool:
        env, name, src = self.env(), f"k{uuid.uuid4().hex[:6]}", self.entry("x")
        (src / "metadata.json").write_text(f'{{"name": "{name}", "version": "1.0.0", "category": "dataset"}}')
        proc = subprocess.Popen([sys.executable, "-m", "registry_cli", "registry", "upload", str(src)], env=env,
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(random.uniform(0.3, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not self.intact(env, name, src):
            return False
        retry = cli(env, "registry", "upload", str(src))  # a retry succeeds, whether or not the kill came after commit
        return retry.returncode == 0 and self.intact(env, name, src)

    def killed_benchmarks(self) -> bool:
        env = self.env()
        clean = self.score({**env, "NEARAI_HOME": str(self.work / f"c-{uuid.uuid4().hex[:8]}")}, "--force")
        self.server.latency = 0.05
        proc = subprocess.Popen([sys.executable, "-m", "registry_cli", "benchmark", "run", str(self.ds),
                                 "ThreeDigitAdditionSolver", "--model=m", f"--api_base={self.server.url}", "--quiet",
                                 "--max_concurrent=4"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(random.uniform(0.8, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.server.latency = 0.0
        return self.score(env) == clean

    def racing_uploads(self) -> bool:
        """Two machines publish different content as one version: one wins, the other is refused."""
        env, name = self.env(), f"r{uuid.uuid4().hex[:6]}"
        srcs = [self.entry("x"), self.entry("x")]
        for s in srcs:
            (s / "metadata.json").write_text(f'{{"name": "{name}", "version": "1.0.0", "category": "dataset"}}')
        procs = [subprocess.Popen([sys.executable, "-m", "registry_cli", "registry", "upload", str(s)],
                                  env={**env, "NEARAI_HOME": str(self.work / f"h-{uuid.uuid4().hex[:8]}")}, cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in srcs]
        codes = [p.wait() for p in procs]
        if sorted(codes) != [0, 1]:
            return False
        return self.intact(env, name, srcs[codes.index(0)])


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    server = FakeOpenAI().start()
    kinds: list[tuple[str, Callable[[Campaign], bool]]] = [
        ("PUT bodies altered (8%)", Campaign.altered_uploads),
        ("GET bodies altered (3%)", Campaign.altered_downloads),
        ("store ignores If-None-Match", Campaign.ignored_if_none_match),
        ("shared cache verdict flipped", Campaign.flipped_shared_verdicts),
        ("upload killed (-9)", Campaign.killed_uploads),
        ("benchmark killed (-9)", Campaign.killed_benchmarks),
        ("racing uploads of one version", Campaign.racing_uploads),
    ]
    try:
        with tempfile.TemporaryDirectory(prefix="nearai-faults-") as tmp:
            campaign = Campaign(f"http://{host}:{port}", server, Path(tmp))
            rows = []
            for label, kind in kinds:
                survived = sum(kind(campaign) for _ in range(n))
                rows.append((label, n, survived))
                print(f"{label:32} {survived}/{n}", file=sys.stderr, flush=True)
    finally:
        server.stop()
        moto.stop()
    print("| fault | tries | survived |\n|---|---|---|")
    for label, tries, survived in rows:
        print(f"| {label} | {tries} | {survived} ({100 * survived // tries}%) |")
    if any(s != t for _, t, s in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
