"""--record, `registry list --category=evaluation`, `evaluation table` in every format, read_solutions and the HTML
report (rendered in headless Chromium), end to end on the local store and the moto S3 server."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from examples.make_addition_dataset import build
from tests.conftest import ROOT, Env, second_home
from tests.openai_server import FakeOpenAI

pytestmark = pytest.mark.slow  # real CLI processes, servers and sandboxes: the full tier


@pytest.fixture
def recorded(any_env: Env, server: FakeOpenAI, tmp_path: Path) -> Env:
    ds = build(tmp_path / "3_digit_addition", size=40)
    base = (str(ds), "ThreeDigitAdditionSolver", f"--api_base={server.url}", "--record", "--quiet")
    any_env.run("benchmark", "run", *base, "--model=alpha", check=True)
    any_env.run("benchmark", "run", *base, "--model=beta", check=True)
    any_env.run("benchmark", "run", *base, "--model=alpha", f"--agent={ROOT / 'examples' / 'addition_agent'}",
                check=True)
    return any_env


def test_record_list_and_rerecord(recorded: Env) -> None:
    listed = recorded.run("registry", "list", "--category=evaluation", check=True).stdout
    assert "tester/evaluation_3_digit_addition_model_alpha_provider_127.0.0.1/0.0.1" in listed
    assert "tester/evaluation_3_digit_addition_model_beta_provider_127.0.0.1/0.0.1" in listed
    assert "tester/evaluation_3_digit_addition_model_alpha_agent_addition-agent_provider_127.0.0.1/0.0.1" in listed
    assert listed.count("evaluation_3_digit_addition") == 3
    table = json.loads(recorded.run("evaluation", "table", "--format=json", check=True).stdout)
    alpha = next(r for r in table["rows"] if r["model"] == "openai/alpha" and not r["agent"])
    assert table["key_columns"] == ["model", "agent"] and table["metric_columns"] == ["3_digit_addition/score"]
    info = recorded.run("registry", "info", "tester/evaluation_3_digit_addition_model_alpha_provider_127.0.0.1",
                        check=True).stdout
    details = json.loads(info.split("\n", 2)[2].split("\n┏")[0])["details"]
    assert details["schema"] == "nearai.evaluation/2" and len(details["evaluation_key"]) == 64
    assert details["selection"] == "" and details["n_datums"] == details["dataset_size"] == 40
    assert details["solver_class"] == "solvers.addition:ThreeDigitAdditionSolver" and details["solver_args"] == {}
    assert details["metrics"]["n"] == 40 and details["metrics"]["score"] == alpha["3_digit_addition/score"]
    assert details["metrics"]["passed"] + details["metrics"]["failed"] + details["metrics"]["errored"] == 40
    assert details["metrics"]["ci95_low"] <= details["metrics"]["score"] <= details["metrics"]["ci95_high"]
    assert len(details["dataset_hash"]) == 64 and details["model"] == "openai/alpha" and details["namespace"] == "tester"
    assert details["provider"] == "127.0.0.1"


def test_rerecording_publishes_a_new_version_and_table_shows_latest(recorded: Env, server: FakeOpenAI,
                                                                     tmp_path: Path) -> None:
    ds = tmp_path / "3_digit_addition"
    out = recorded.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", f"--api_base={server.url}",
                       "--model=beta", "--temperature=0", "--record", "--quiet", check=True).stdout
    assert "40 cached" in out and "model_beta_provider_127.0.0.1/0.0.2" in out
    rows = json.loads(recorded.run("evaluation", "table", "--format=json", "--all_metrics", check=True).stdout)["rows"]
    beta = [r for r in rows if r["model"] == "openai/beta"]
    assert len(beta) == 1 and beta[0]["3_digit_addition/n"] == 40
    every = recorded.run("registry", "list", "--category=evaluation", "--noshow_latest_version", check=True).stdout
    assert "model_beta_provider_127.0.0.1/0.0.1" in every and "model_beta_provider_127.0.0.1/0.0.2" in every


def test_table_formats_and_filters(recorded: Env) -> None:
    plain = recorded.run("evaluation", "table", check=True).stdout
    lines = [ln for ln in plain.splitlines() if "openai/" in ln]
    assert [ln.split("│")[1].strip() for ln in lines] == ["openai/alpha", "openai/alpha", "openai/beta"]  # sorted
    assert len({ln.rindex("│") for ln in lines}) == 1  # numbers right-aligned in one column
    rows = list(csv.DictReader(io.StringIO(recorded.run("evaluation", "table", "--format=csv", check=True).stdout)))
    assert {r["model"] for r in rows} == {"openai/alpha", "openai/beta"} and len(rows) == 3
    md = recorded.run("evaluation", "table", "--format=markdown", "--all_key_columns", check=True).stdout
    assert md.splitlines()[0].startswith("| model") and "provider" in md.splitlines()[0] and "---:|" in md
    wide = json.loads(recorded.run("evaluation", "table", "--format=json", "--all_metrics", "--num_columns=100",
                                   check=True).stdout)
    assert {"3_digit_addition/score", "3_digit_addition/stderr", "3_digit_addition/n", "3_digit_addition/cost",
            "3_digit_addition/prompt_tokens"} <= set(wide["metric_columns"])
    narrow = recorded.run("evaluation", "table", "--all_metrics", "--num_columns=2", "--metric_name_max_length=10")
    assert "more metric columns hidden" in narrow.stderr and "3_digit_a…" in narrow.stdout
    only_beta = json.loads(recorded.run("evaluation", "table", "--format=json", "--model=beta", check=True).stdout)
    assert [r["model"] for r in only_beta["rows"]] == ["openai/beta"]
    none = json.loads(recorded.run("evaluation", "table", "--format=json", "--benchmark=mmlu", check=True).stdout)
    assert none["rows"] == []
    bad = recorded.run("evaluation", "table", "--format=xml")
    assert bad.returncode == 2 and "unknown --format" in bad.stderr


def test_read_solutions(recorded: Env, tmp_path: Path) -> None:
    entry = "tester/evaluation_3_digit_addition_model_beta_provider_127.0.0.1"
    other = second_home(recorded, tmp_path, "reader")  # fresh machine: solutions come from the store
    failed = other.run("evaluation", "read_solutions", entry, "--status=failed", check=True).stdout
    n_failed = int(failed.strip().splitlines()[-1].split()[0])
    assert n_failed > 0 and "failed" in failed and "passed" not in failed.split("┩")[1]
    verbose = other.run("evaluation", "read_solutions", entry, "--verbose", check=True).stdout
    assert verbose.count('"key":') == 40 and '"datum_hash"' in verbose
    bad = other.run("evaluation", "read_solutions", entry, "--status=maybe")
    assert bad.returncode == 2 and "unknown --status" in bad.stderr


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed")
def test_html_report_renders_in_chromium(recorded: Env, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    recorded.run("evaluation", "report", f"--html={page}", check=True)
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chrome'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert 'data-rendered="3"' in dom  # the page's script ran and counted 3 bars
    assert "3 rows, 3 bars" in dom and "3_digit_addition: score" in dom
    assert dom.count('class="errorbar"') == 3 and "openai/beta" in dom
    values = [float(x.split('"')[0]) for x in dom.split('data-value="')[1:]]
    assert values == sorted(values, reverse=True)


def test_report_without_evaluations_is_a_clear_error(local_env: Env, tmp_path: Path) -> None:
    proc = local_env.run("evaluation", "report", f"--html={tmp_path / 'r.html'}")
    assert proc.returncode == 1 and "no evaluations to report" in proc.stderr and not (tmp_path / "r.html").exists()


def test_a_long_table_is_drawn_as_rich_draws_a_short_one() -> None:
    """Tables of more than `RICH_ROWS` rows are drawn without rich (which takes 0.7 ms a row); the same glyphs,
    alignment and widths, wide characters included."""
    from rich.console import Console
    from rich.table import Table

    from registry_cli.shell.render_evaluation import RICH_ROWS, boxed

    header = ["model", "agent", "mmlu/score", "a_much_longer_benchmark/score"]
    body = [["openai/alpha", "", "0.5000", "1.0000"], ["模型-β", "tester/agent/0.1.0", "", "0.2500"],
            ["m", "a", "12.0000", ""]]
    table = Table(*header)
    for i in (2, 3):
        table.columns[i].justify = "right"
    for row in body:
        table.add_row(*row)
    drawn = io.StringIO()
    Console(file=drawn, width=500, highlight=False).print(table)
    assert boxed(header, body, 2) == drawn.getvalue()
    many = boxed(header, [body[0]] * (RICH_ROWS + 1), 2).splitlines()
    assert len(many) == RICH_ROWS + 5 and len({len(line) for line in many}) == 1
