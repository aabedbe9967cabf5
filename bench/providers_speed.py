"""CPU per datum of each way of asking a model, through the whole CLI: the direct OpenAI-compatible client (the
floor), Anthropic's and Gemini's own formats and an OpenAI-shaped provider (together_ai) through the project's HTTP
client with litellm's translation, and the same Anthropic model through ``litellm.acompletion``
(``NEARAI_INFERENCE_BACKEND=acompletion``, how such providers were asked before). The server
(tests/openai_server.py, speaking all three APIs) runs in its own process.

    python bench/providers_speed.py [N]     # N datums (default 3,000) at 64 concurrent
    # target: every provider <= 1.5x the direct path's CPU per datum; litellm's start-up <= 0.3 s over the direct one

CPU per datum is the slope between a run of 200 datums and one of N (whole CLI processes, so start-up and imports
cancel out). Start-up is the wall time of a one-datum run: on a fresh home (litellm is imported to translate), and
again after the runs (the route and its checked request templates are kept: litellm is not imported). Every path
must give the same score.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

from _common import ROOT, fresh_home, start_server

PATHS = {
    "direct (OpenAI-compatible)": ("m", "/v1", {}),
    "anthropic, translated": ("anthropic/claude-3-5-haiku-20241022", "", {}),
    "gemini, translated": ("gemini/gemini-2.0-flash", "", {}),
    "together_ai, translated": ("together_ai/meta-llama/Llama-3-8b", "/v1", {"NEARAI_INFERENCE_BACKEND": "litellm"}),
    "anthropic, litellm.acompletion": ("anthropic/claude-3-5-haiku-20241022", "",
                                       {"NEARAI_INFERENCE_BACKEND": "acompletion"}),
}


def run(env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds and score of one whole CLI run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "registry_cli", *args], env=env, cwd=ROOT, capture_output=True,
                         text=True)
    wall = time.perf_counter() - t0
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, out.stdout.split("Final score: ")[1].split()[0]


def main() -> None:
    from examples.make_addition_dataset import build

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3_000
    home = fresh_home()
    big, small, one = (build(home / f"d{k}" / "3_digit_addition", k) for k in (n, 200, 1))
    srv, url = start_server(0.0)
    base = url.removesuffix("/v1")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ANTHROPIC_API_KEY": "sk-ant-bench", "GEMINI_API_KEY": "g-bench",
           "TOGETHERAI_API_KEY": "tk-bench"}
    results = {}
    try:
        for name, (model, suffix, extra) in PATHS.items():
            args = ("ThreeDigitAdditionSolver", f"--model={model}", f"--api_base={base}{suffix}",
                    "--max_concurrent=64", "--quiet", "--force")
            run_env = {**env, **extra, "NEARAI_HOME": str(home / name.split()[0])}
            first, _, _ = run(run_env, "benchmark", "run", str(one), *args)
            run(run_env, "benchmark", "run", str(small), *args)  # its route is kept from now on
            _, cpu_small, _ = run(run_env, "benchmark", "run", str(small), *args)
            _, cpu_big, score = run(run_env, "benchmark", "run", str(big), *args)
            later, _, _ = run(run_env, "benchmark", "run", str(one), *args)
            results[name] = (first, later, (cpu_big - cpu_small) / (n - 200) * 1000, score)
    finally:
        srv.terminate()
    scores = {score for *_, score in results.values()}
    assert len(scores) == 1, results
    floor_first, floor_later, floor_cpu, _ = results["direct (OpenAI-compatible)"]
    print(f"{n} datums at 64 concurrent; CPU per datum = slope from 200 to {n} datums; start-up = a one-datum run,")
    print("first on a fresh home, then once the model's route is kept (cache/translations/)")
    for name, (first, later, cpu, _) in results.items():
        print(f"{name:32s} CPU {cpu:.3f} ms/datum ({cpu / floor_cpu:.2f}x direct)   start-up {first:.2f} s "
              f"(+{first - floor_first:.2f} s), then {later:.2f} s (+{later - floor_later:.2f} s)")


if __name__ == "__main__":
    main()
