"""Engine speed: 1,000 addition datums against a local OpenAI-compatible server with 50 ms latency at 64 concurrent,
compared with a bare aiohttp client in the same run; then a fully cached re-run of 10,000 datums.

    python bench/benchmark_speed.py            # targets: run <= 3 s, cached 10k <= 1 s
"""

from __future__ import annotations

import asyncio
import time

from _common import fresh_home, start_server
from bare_client import post_all

DOC_SOLVER = """from solvers import SolverStrategy


class DocSolver(SolverStrategy):
    def __init__(self, dataset_ref, model="", agent=""):
        super().__init__(model, agent)
        self.dataset_ref = dataset_ref

    def evaluation_name(self):
        return "3_digit_addition"

    def solve(self, datum):
        session = self.start_inference_session(datum["input"])
        goal = f"Please add the following numbers together: {datum['input']}\\n\\nOutput the result only."
        return session.run_task(goal).strip() == datum["output"]
"""


def run(dataset: str, url: str, **kw: object) -> tuple[float, object]:
    from registry_cli.apps.benchmark import run_benchmark
    from registry_cli.engine.planning.params import RunParams

    fields: dict[str, object] = {"solver_strategy": "ThreeDigitAdditionSolver", **kw}
    params = RunParams(dataset=dataset, model="fake", api_base=url, max_concurrent=64, quiet=True,
                       **fields)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    summary = run_benchmark(params).summary
    return time.perf_counter() - t0, summary


def main() -> None:
    from examples.make_addition_dataset import build

    home = fresh_home()
    t0 = time.perf_counter()
    import datasets

    import_s = time.perf_counter() - t0
    ds1k = build(home / "add1k", 1000)
    ds10k = build(home / "add10k", 10000)
    srv, url = start_server(0.05)
    try:
        rows = datasets.load_from_disk(str(ds1k)).to_list()
        prompts = [f"Please add the following numbers together: {r['input']}\n\nOutput the result only." for r in rows]
        bare = asyncio.run(post_all(url, prompts, 64))
        t_run, s = run(str(ds1k), url)
        assert s.total == 1000 and s.count("error") == 0, "run had errors"  # type: ignore[attr-defined]
        t_cached1k, _ = run(str(ds1k), url)
        doc_solver = home / "doc_solver.py"  # nearai's documented style: synchronous solve(datum), a thread per datum
        doc_solver.write_text(DOC_SOLVER)
        t_doc, sd = run(str(ds1k), url, solver_strategy=f"{doc_solver}:DocSolver")
        assert sd.total == 1000 and sd.count("error") == 0, "doc-style run had errors"  # type: ignore[attr-defined]
    finally:
        srv.terminate()
    fast, url0 = start_server(0.0)
    try:
        t_fill, _ = run(str(ds10k), url0)
        t_cached, s10 = run(str(ds10k), url0)
        assert s10.cached == 10000  # type: ignore[attr-defined]
    finally:
        fast.terminate()
    print(f"import datasets (not in the timings below): {import_s:.2f} s")
    print(f"bare aiohttp client, 1000 requests @64:     {bare:.2f} s")
    print(f"nearai benchmark run, 1000 datums @64:      {t_run:.2f} s  ({t_run / bare:.2f}x bare; target <= 3 s)")
    print(f"cached re-run, 1000 datums:                 {t_cached1k:.2f} s")
    print(f"docs-style synchronous solver, 1000 @64:   {t_doc:.2f} s  ({t_doc / bare:.2f}x bare)")
    print(f"fill 10,000 datums (0 ms server):           {t_fill:.2f} s")
    print(f"fully cached re-run, 10,000 datums:         {t_cached:.2f} s  (target <= 1 s)")


if __name__ == "__main__":
    main()
