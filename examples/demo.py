"""The main job end to end on the embedded default: build the 3-digit-addition dataset, publish it to the local
registry, start a local OpenAI-compatible server, run the benchmark twice (the second run is fully cached), record
the evaluation and print the evaluation table. Uses a throwaway NEARAI_HOME unless one is set."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def nearai(*args: str) -> None:
    print(f"$ nearai {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "registry_cli", *args], check=True, cwd=ROOT)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from examples.humaneval_scenarios.make_scenarios import build as build_scenarios
    from examples.make_addition_dataset import build
    from registry_cli.engine.isolation.bwrap import bwrap_works
    from tests.openai_server import FakeOpenAI

    sandbox = "bwrap" if bwrap_works() else "native"  # untrusted code runs sandboxed wherever bwrap exists

    home = Path(os.environ.get("NEARAI_HOME") or tempfile.mkdtemp(prefix="nearai-demo-"))
    os.environ["NEARAI_HOME"] = str(home)
    os.environ.setdefault("NEARAI_NAMESPACE", "demo")
    work = Path(tempfile.mkdtemp(prefix="nearai-demo-data-"))
    dataset = build(work / "3_digit_addition", 1000)
    server = FakeOpenAI(latency=0.05).start()
    try:
        nearai("registry", "upload", str(dataset))
        nearai("registry", "list")
        run = ["benchmark", "run", "demo/3_digit_addition/1.0.0", "ThreeDigitAdditionSolver", "--model=demo-model",
               f"--api_base={server.url}", "--max_concurrent=64"]
        nearai(*run)
        nearai(*run, "--record")  # fully cached: zero model calls
        nearai("benchmark", "run", "demo/3_digit_addition/1.0.0", "ThreeDigitAdditionSolver", "--model=demo-model",
               f"--api_base={server.url}", f"--agent={ROOT / 'examples' / 'addition_agent'}", "--limit=50", "--record",
               f"--sandbox={sandbox}")
        nearai("evaluation", "table")  # the key columns that tell evaluations apart appear by themselves
        tasks = build_scenarios(work / "scenarios", 5)  # HumanEval as AutoGenBench scenarios, through the relay
        nearai("benchmark", "run", str(tasks), "ScenarioSolver", "--model=demo-model", f"--api_base={server.url}",
               "--num_repeats=2", f"--results_dir={work / 'Results'}", f"--sandbox={sandbox}")
        nearai("scenario", "tabulate", str(work / "Results"))
        server.skew = {"demo-model-b": 3}  # a second model, wrong on more items
        suite = work / "compare.toml"  # two models x two tasks, one event loop, a run folder with its manifest
        suite.write_text(f'name = "compare"\nparallel = 2\n[defaults]\ndataset = "demo/3_digit_addition/1.0.0"\n'
                         f'solver = "ThreeDigitAdditionSolver"\napi_base = "{server.url}"\nmax_concurrent = 32\n'
                         '[[tasks]]\nname = "smoke"\nmodel = ["demo-model", "demo-model-b"]\nlimit = 50\n'
                         '[[tasks]]\nname = "rollouts"\nmodel = ["demo-model", "demo-model-b"]\nlimit = 200\nrollouts = 3\n')
        nearai("suite", "run", str(suite), "--record")
        nearai("suite", "summarize", "compare", "--latest", "--format=markdown")  # with the paired difference
        print(f"model requests served: {server.requests} (NEARAI_HOME={home})")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
