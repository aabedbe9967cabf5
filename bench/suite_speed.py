"""Suite speed: 10 cells x 1,000 addition datums (10 models), parallel = 4, 64 requests per cell, against a local
OpenAI-compatible server with 50 ms latency; compared in the same run with a bare aiohttp client sending the same
10,000 requests at the same total concurrency (4 x 64). Then the fully cached re-run of the suite.

    python bench/suite_speed.py      # targets: suite <= 1.3x the bare client; cached re-run < 2 s

It also prints the client process's CPU per datum, the suite's against the bare client's.

The server is pinned to one core and the clients to the rest, so the server's share of the CPU is the same for the
bare client and the suite; they take turns, three rounds each (the suite with --force after the first), and the
best of each is compared.
"""

from __future__ import annotations

import asyncio
import resource
import time

from _common import fresh_home, start_server

CELLS, DATUMS, PARALLEL, PER_CELL, ROUNDS = 10, 1000, 4, 64, 3


async def bare_client(url: str, prompts: list[str], models: list[str], concurrency: int) -> float:
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        async def one(model: str, p: str) -> None:
            async with sem:
                async with s.post(url + "/chat/completions",
                                  json={"model": model, "messages": [{"role": "user", "content": p}]}) as r:
                    await r.json()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(m, p) for m in models for p in prompts))
        return time.perf_counter() - t0


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_suite(config: str, force: bool = False) -> tuple[float, object]:
    from registry_cli.apps.suites.config import load_suite
    from registry_cli.apps.suites.run import run_suite as run

    t0 = time.perf_counter()
    result = run(load_suite(config), force=force)
    return time.perf_counter() - t0, result


def main() -> None:
    import datasets

    from examples.make_addition_dataset import build

    home = fresh_home()
    ds = build(home / "3_digit_addition", DATUMS)
    models = [f"model-{i}" for i in range(CELLS)]
    srv, url = start_server(0.05, pin=True)
    try:
        config = home / "speed.toml"
        config.write_text(f'name = "speed"\nparallel = {PARALLEL}\n[[tasks]]\ndataset = "{ds}"\n'
                          f'solver = "ThreeDigitAdditionSolver"\napi_base = "{url}"\nmax_concurrent = {PER_CELL}\n'
                          f"model = {models!r}\n".replace("'", '"'))
        rows = datasets.load_from_disk(str(ds)).to_list()
        prompts = [f"Please add the following numbers together: {r['input']}\n\nOutput the result only." for r in rows]
        bares, suites, bare_cpu, suite_cpu = [], [], [], []
        for round_ in range(ROUNDS):
            c0 = cpu()
            bares.append(asyncio.run(bare_client(url, prompts, models, PARALLEL * PER_CELL)))
            c1 = cpu()
            t, result = run_suite(str(config), force=round_ > 0)
            assert result.status == "completed", result.status  # type: ignore[attr-defined]
            suites.append(t)
            bare_cpu.append(c1 - c0)
            suite_cpu.append(cpu() - c1)
        bare, t_suite = min(bares), min(suites)
        t_cached, again = run_suite(str(config))
        assert all(s.cached == DATUMS for s in again.states)  # type: ignore[attr-defined]
    finally:
        srv.terminate()
    print(f"rounds (bare / suite): {', '.join(f'{b:.2f}/{t:.2f}' for b, t in zip(bares, suites))}")
    print(f"bare aiohttp client, {CELLS * DATUMS} requests @{PARALLEL * PER_CELL}:  {bare:.2f} s (best of {ROUNDS})")
    print(f"nearai suite run, {CELLS} cells x {DATUMS} @{PARALLEL}x{PER_CELL}:   {t_suite:.2f} s (best of {ROUNDS})  "
          f"({t_suite / bare:.2f}x bare; target <= 1.3x)")
    per = CELLS * DATUMS / 1000
    print(f"client CPU per datum (best round): bare {min(bare_cpu) / per:.3f} ms, suite {min(suite_cpu[1:]) / per:.3f} ms "
          f"({min(suite_cpu[1:]) / min(bare_cpu):.2f}x; the first suite round, which imports, is left out)")
    print(f"fully cached re-run of the suite:            {t_cached:.2f} s  (target < 2 s)")


if __name__ == "__main__":
    main()
