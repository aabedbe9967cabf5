"""The viewer's data, in-process (the fast tier): a solutions index made without parsing agrees with parsing, on
lines built to mislead it; the table's sources, filters and sorting; a comparison's paired difference and flips;
the app's routes through Flask's test client, over evaluations published to a real local store."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from evaluation import EVALUATION_SCHEMA, SOLUTIONS_FILE
from registry_cli.apps.viewer.compare import compare
from registry_cli.apps.viewer.datums import Evaluations, datum_page, datum_view
from registry_cli.apps.viewer.links import announce, entry_link, evaluation_link, viewer_url, withdraw
from registry_cli.apps.viewer.solutions import STATUSES, index_solutions, read_lines, select
from registry_cli.apps.viewer.tables import TableKeeper, TableQuery, table_page
from registry_cli.apps.viewer.web import create_app
from registry_cli.core.manifest import FileEntry, Manifest
from registry_cli.core.registry import Registry
from tests.conftest import Env


def line(i: int, status: str, **extra: Any) -> dict[str, Any]:
    return {"agent": None, "datum_hash": f"{i:064x}", "error": None, "index": i, "info": {}, "input": {"q": f"{i}"},
            "key": f"k{i}", "metrics": {}, "repeat": 0, "run_folder": None, "status": status,
            "usage": {"prompt_tokens": 1}, **extra}


TRICKY = [
    line(0, "passed"),
    # an agent whose messages talk about keys, and an info that has its own status, index and repeat
    line(1, "failed", agent=[{"messages": [{"role": "assistant", "content": '"status": "passed", "index": 9'}],
                              "logs": [{"index": 5, "status": "passed"}]}],
         info={"status": "passed", "repeat": 7, "answer": "Zürich \"quoted\""}),
    line(2, "passed", metrics={"total_score": 0.25}, repeat=3),
    line(3, "error", error="timed out", metrics={"total_score": 1.0}),
    line(4, "empty", input="plain text input"),
]


def write_lines(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    return path


def test_the_index_agrees_with_parsing_on_misleading_lines(tmp_path: Path) -> None:
    idx = index_solutions(write_lines(tmp_path / "s.jsonl", TRICKY))
    assert len(idx) == 5
    assert [idx.status_of(i) for i in range(5)] == ["passed", "failed", "passed", "error", "empty"]
    assert list(idx.indexes) == [0, 1, 2, 3, 4] and list(idx.repeats) == [0, 0, 3, 0, 0]
    assert idx.datums == [f"{i:064x}" for i in range(5)]
    assert list(idx.scores) == [1.0, 0.0, 0.25, 0.0, 0.0]  # the graded total of a verdict; no score for an error
    assert idx.counts() == {"passed": 2, "failed": 1, "error": 1, "empty": 1}
    assert select(idx, "passed") == [0, 2] and select(idx, "error", "TIMED") == [3]
    assert select(idx, search="zürich") == [1]  # written \\u00fc in the file
    assert [r["index"] for r in read_lines(idx, [4, 1])] == [4, 1]
    assert STATUSES == ("passed", "failed", "error", "empty")


def test_a_damaged_line_is_shown_as_one(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.jsonl", TRICKY[:2])
    path.write_text(path.read_text() + '{"status": "passed", "cut sh\n')
    idx = index_solutions(path)
    assert len(idx) == 3 and idx.status_of(2) == "passed"
    assert read_lines(idx, [2])[0]["error"] == "this result's line is not valid JSON"


def test_an_empty_solutions_file(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text("")
    idx = index_solutions(tmp_path / "s.jsonl")
    assert len(idx) == 0 and select(idx, search="x") == []


def publish(reg: Registry, name: str, model: str, rows: list[dict[str, Any]], tags: list[str] | None = None,
            benchmark: str = "adding", files: dict[str, str] | None = None, shown: bool = True, tail: str = "") -> str:
    data = ("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows) + tail).encode()
    kept = [FileEntry(path=p, sha256=reg.put_blob(t.encode()), size=len(t.encode())) for p, t in (files or {}).items()]
    passed = sum(r["status"] == "passed" for r in rows)
    details = {"schema": EVALUATION_SCHEMA, "benchmark": benchmark, "model": model, "agent": "", "namespace": "tester",
               "evaluation_key": f"{name:0>64}"[-64:],
               "metrics": {"score": passed / len(rows), "n": len(rows), "passed": passed, "stderr": 0.05,
                           "errored": sum(r["status"] == "error" for r in rows)}}
    meta = {"name": name, "version": "0.0.1", "category": "evaluation", "description": "", "details": details,
            "tags": tags or ["evaluation"], "show_entry": shown}
    reg.publish_manifest(Manifest(namespace="tester", name=name, version="0.0.1", metadata=meta,
                                  files=[FileEntry(path=SOLUTIONS_FILE, sha256=reg.put_blob(data), size=len(data)),
                                         *kept],
                                  created_at=datetime.now(timezone.utc).isoformat()))
    return f"tester/{name}/0.0.1"


@pytest.fixture
def registry(local_env: Env) -> Registry:
    return local_env.registry()


@pytest.fixture
def two(registry: Registry) -> tuple[str, str]:
    """Model a passes datums 0-7 of 10; model b passes 2-9 but errors on 9: b gains 8, loses 0 and 1."""
    a = [line(i, "passed" if i < 8 else "failed") for i in range(10)]
    b = [line(i, "passed" if i >= 2 else "failed") for i in range(9)] + [line(9, "error")]
    return publish(registry, "eval_a", "m/a", a, ["evaluation", "nightly"]), publish(registry, "eval_b", "m/b", b)


def test_the_table_keeps_each_score_with_its_entry_interval_and_tags(registry: Registry, two: tuple[str, str]) -> None:
    keeper = TableKeeper(registry, fresh_s=0)
    page = table_page(keeper, TableQuery())
    assert page.benchmarks == ["adding"] and page.total_rows == 2
    cells = {keys["model"]: cells["adding"] for keys, cells in page.rows}
    assert cells["m/a"].entry == two[0] and cells["m/a"].score == 0.8
    assert cells["m/a"].lo == pytest.approx(0.8 - 1.96 * 0.05) and cells["m/b"].errored == 1
    assert [k["model"] for k, _ in table_page(keeper, TableQuery(tag="nightly")).rows] == ["m/a"]
    assert [k["model"] for k, _ in table_page(keeper, TableQuery(sort="adding")).rows] == ["m/b", "m/a"]
    assert [k["model"] for k, _ in table_page(keeper, TableQuery(sort="model", descending=True)).rows] == ["m/b", "m/a"]
    assert table_page(keeper, TableQuery(model="zzz")).rows == []
    assert page.choices["tag"] == ["evaluation", "nightly"]


def test_the_held_table_is_kept_until_an_evaluation_changes(registry: Registry, two: tuple[str, str]) -> None:
    keeper = TableKeeper(registry, fresh_s=0)
    first, _ = keeper.table()
    assert keeper.table()[0] is first  # listed again, the same digest: nothing read or remade
    publish(registry, "eval_c", "m/c", [line(0, "passed")])
    changed, choices = keeper.table()
    assert changed is not first and len(changed.rows) == 3 and "m/c" in choices["model"]


def test_the_table_pages_and_filters_by_benchmark(registry: Registry) -> None:
    for i in range(55):
        publish(registry, f"eval_{i:02d}", f"m/{i:02d}", [line(0, "passed" if i % 2 else "failed")],
                benchmark="odd" if i == 54 else "adding")
    keeper = TableKeeper(registry, fresh_s=0)
    first, second = table_page(keeper, TableQuery()), table_page(keeper, TableQuery(page=2))
    assert (first.pages, len(first.rows), len(second.rows)) == (2, 50, 5) and first.benchmarks == ["adding", "odd"]
    assert table_page(keeper, TableQuery(page=99)).page == 2  # past the end: the last page
    only = table_page(keeper, TableQuery(benchmark="odd"))
    assert only.benchmarks == ["odd"] and [k["model"] for k, _ in only.rows] == ["m/54"]
    assert set(only.rows[0][1]) == {"odd"}


def test_a_comparison_pairs_verdicts_and_lists_flips(registry: Registry, two: tuple[str, str]) -> None:
    c = compare(Evaluations(registry), list(two))
    (pair,) = c.pairs
    assert c.shared == 9 and pair.left_out == 1  # datum 9 errored in b: no verdict, out of the pair
    assert pair.diff is not None and pair.diff["n"] == 9
    assert pair.diff["diff"] == pytest.approx((1 - 2) / 9)  # b gains datum 8, loses 0 and 1
    assert (pair.gained, pair.lost) == (1, 2) and c.total == 3
    assert [r["index"] for r in c.rows] == [0, 1, 8]
    assert [[a["status"] for a in r["answers"]] for r in c.rows] == [["passed", "failed"]] * 2 + [["failed", "passed"]]
    assert c.labels == ["m/a", "m/b"]
    assert [r["index"] for r in compare(Evaluations(registry), list(two), "gained").rows] == [8]


def test_datums_page_and_one_datum(registry: Registry, two: tuple[str, str]) -> None:
    opened = Evaluations(registry)
    page = datum_page(opened, two[1], status="failed")
    assert page.total == 2 and [r["index"] for r in page.rows] == [0, 1]
    assert page.counts == {"passed": 7, "failed": 2, "error": 1, "empty": 0}
    view = datum_view(opened, two[1], 9)
    assert view.row["status"] == "error" and view.files == []


def test_hidden_evaluations_stay_out_of_the_table(registry: Registry, two: tuple[str, str]) -> None:
    publish(registry, "eval_c", "m/c", [line(0, "passed")], shown=False)
    rows = table_page(TableKeeper(registry, fresh_s=0), TableQuery()).rows
    assert sorted(k["model"] for k, _ in rows) == ["m/a", "m/b"]


def test_a_scenario_datum_shows_its_console_log_and_files(registry: Registry) -> None:
    rows = [line(0, "failed", run_folder="runs/task_1/0", error=None)]
    files = {"runs/task_1/0/console_log.txt": "SCENARIO.py: ALL TESTS PASSED? no\n<b>bold</b>\n",
             "runs/task_1/0/coding/app.py": "print('hi')\n", "runs/task_2/0/console_log.txt": "another datum\n"}
    entry = publish(registry, "eval_s", "m/s", rows, files=files)
    view = datum_view(Evaluations(registry), entry, 0)
    assert "ALL TESTS PASSED? no" in view.console_log
    assert [p for p, _ in view.files] == ["runs/task_1/0/console_log.txt", "runs/task_1/0/coding/app.py"]
    client = create_app(registry).test_client()
    page = client.get(f"/evaluation/{entry}/datum/0").get_data(as_text=True)
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page  # shown, never rendered
    code = client.get(f"/evaluation/{entry}/file?path=runs/task_1/0/coding/app.py").get_data(as_text=True)
    assert "print(&#39;hi&#39;)" in code
    assert client.get(f"/evaluation/{entry}/file?path=../../etc/passwd").status_code == 404


def test_a_damaged_datum_still_renders(registry: Registry) -> None:
    entry = publish(registry, "eval_d", "m/d", [line(0, "passed")], tail='{"status": "passed", "cut sh\n')
    client = create_app(registry).test_client()
    assert client.get(f"/evaluation/{entry}").status_code == 200
    page = client.get(f"/evaluation/{entry}/datum/1")
    assert page.status_code == 200 and "not valid JSON" in page.get_data(as_text=True)


def test_routes_render_and_refuse(registry: Registry, two: tuple[str, str]) -> None:
    client = create_app(registry).test_client()
    assert client.get("/evaluations", headers={"Host": "127.0.0.1:5"}).status_code == 200
    page = client.get(f"/compare?e={two[0]}&e={two[1]}").get_data(as_text=True)
    assert "-11.1 pts" in page and 'class="forest"' in page
    assert client.get("/evaluation/tester/nothing/0.0.1").status_code == 404
    assert client.get(f"/compare?e={two[0]}").status_code == 400
    assert client.post("/evaluations").status_code == 405
    assert client.get("/evaluations", headers={"Host": "rebound.example"}).status_code == 421
    assert "default-src 'none'" in client.get("/entries").headers["Content-Security-Policy"]


def test_links_name_a_running_viewer_only(tmp_path: Path) -> None:
    assert viewer_url(tmp_path) == "" and evaluation_link(tmp_path, "a/b/1") == ""
    announce(tmp_path, "http://127.0.0.1:9")
    assert evaluation_link(tmp_path, "a/b/1") == "http://127.0.0.1:9/evaluation/a/b/1"
    assert entry_link(tmp_path, "a/b/1") == "http://127.0.0.1:9/entry/a/b/1"
    (tmp_path / "viewer.json").write_text(json.dumps({"url": "http://x", "owner": "999999999-1"}))  # a gone process
    assert viewer_url(tmp_path) == ""
    announce(tmp_path, "http://127.0.0.1:9")
    withdraw(tmp_path)
    assert not (tmp_path / "viewer.json").exists()
