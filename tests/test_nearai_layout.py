"""nearai users' registry habits and readable results: upstream's ``NAME/VERSION/`` folders, hyphenated commands,
bare dataset names, tables that keep names whole at 80 columns, and an HTML report that fits 1280 px in Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from examples.make_addition_dataset import build
from tests.conftest import ROOT, Env
from tests.openai_server import FakeOpenAI

pytestmark = pytest.mark.slow


def test_upstream_folder_layout_hyphens_and_agent_create_by_name(local_env: Env, tmp_path: Path) -> None:
    folder = tmp_path / "my-dataset" / "1.2.0"
    folder.mkdir(parents=True)
    (folder / "data.txt").write_text("x")
    local_env.run("registry", "metadata-template", str(folder), "--category=dataset", check=True)
    meta = json.loads((folder / "metadata.json").read_text())
    assert (meta["name"], meta["version"]) == ("my-dataset", "1.2.0")
    up = local_env.run("registry", "upload", str(folder), check=True).stdout
    assert "uploaded tester/my-dataset/1.2.0" in up
    made = local_env.run("agent", "create", "--name", "helper", cwd=tmp_path, check=True)
    assert (tmp_path / "helper" / "0.0.1" / "agent.py").is_file() and "helper/0.0.1" in made.stdout
    assert "uploaded tester/helper/0.0.1" in local_env.run("agent", "upload", str(tmp_path / "helper" / "0.0.1"),
                                                           check=True).stdout
    none = local_env.run("agent", "create")
    assert none.returncode == 2 and "pass the agent's folder or --name" in none.stderr


def test_a_bare_dataset_name_is_the_newest_entry_of_that_name(local_env: Env, server: FakeOpenAI,
                                                                tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=4)
    local_env.run("registry", "upload", str(ds), check=True)
    local_env.vars["NEARAI_NAMESPACE"] = "someone"
    local_env.run("registry", "upload", str(ds), check=True)
    local_env.vars["NEARAI_NAMESPACE"] = "tester"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = local_env.run("benchmark", "run", "3_digit_addition", "ThreeDigitAdditionSolver", "--model=fake",
                        f"--api_base={server.url}", cwd=elsewhere, check=True)
    assert "'3_digit_addition' is tester/3_digit_addition/1.0.0, the newest dataset of that name; also in someone" \
        in out.stderr and "Final score: " in out.stdout
    missing = local_env.run("benchmark", "run", "no_such_set", "ThreeDigitAdditionSolver", "--model=fake")
    assert missing.returncode == 1 and "neither a local folder nor a registry entry" in missing.stderr


def test_tables_keep_names_whole_at_80_columns(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=4)
    base = (str(ds), "ThreeDigitAdditionSolver", f"--api_base={server.url}", "--record", "--quiet")
    for model in ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06"):
        local_env.run("benchmark", "run", *base, f"--model={model}", check=True)
    local_env.run("benchmark", "run", *base, "--model=gpt-4o-mini-2024-07-18",
                  f"--agent={ROOT / 'examples' / 'addition_agent'}", check=True)
    local_env.vars["COLUMNS"] = "80"
    table = local_env.run("evaluation", "table", check=True).stdout
    assert all(len(line) <= 80 for line in table.splitlines())
    for name in ("openai/gpt-4o-mini-2024-07-18", "openai/gpt-4o-2024-08-06", "addition-agent@"):
        assert name in table  # whole, on one line
    listed = local_env.run("registry", "list", check=True).stdout
    assert all(len(line) <= 80 or (line.startswith("tester/evaluation_") and " " not in line)
               for line in listed.splitlines())  # only a name longer than the screen goes past it, whole
    for model in ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06"):
        assert f"tester/evaluation_3_digit_addition_model_{model}_provider_127.0.0.1/0.0.1" in listed
    assert "…" not in listed and "…" not in table
    every = local_env.run("evaluation", "table", "--all_metrics", "--num_columns=100", check=True).stdout
    assert "3_digit_addition/prompt_tokens" in every and "3_digit_addition/ci95_low" in every


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed")
def test_the_report_labels_bars_with_what_differs_and_fits_1280_px(local_env: Env, server: FakeOpenAI,
                                                                    tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=6)
    base = (str(ds), "ThreeDigitAdditionSolver", f"--api_base={server.url}", "--record", "--quiet")
    long = "an-unusually-long-model-name-that-would-not-fit-in-a-label-of-its-own-v2"
    for extra in ((f"--model={long}",), (f"--model={long}", "--temperature=0.7"), ("--model=short", "--limit=3")):
        local_env.run("benchmark", "run", *base, *extra, check=True)
    page = tmp_path / "report.html"
    local_env.run("evaluation", "report", f"--html={page}", check=True)
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,900",
         f"--user-data-dir={tmp_path / 'chrome'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert 'data-rendered="3"' in dom and 'data-labels-inside="true"' in dom
    assert int(dom.split('data-page-width="')[1].split('"')[0]) <= 1280
    labels = ["\n".join(t.split(">", 1)[1] for t in part.split("</text>")[0].split("<tspan")[1:])
              for part in dom.split('class="label">')[1:]]
    text = [lbl.replace("</tspan>", "") for lbl in labels]
    assert any("temperature=0.7" in t for t in text) and any("temperature=0.0" in t for t in text)
    assert any("selection=first 3" in t for t in text)
    assert sum(long in t.replace("\n", "") for t in text) == 2  # the whole name, broken across lines, never cut
    assert len(set(text)) == 3  # every bar tells itself apart
