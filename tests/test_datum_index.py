"""A rerun plans from the dataset's index and loads the dataset only when a datum must be computed or recorded.
Real CLI subprocesses against the fake OpenAI server; the datasets on disk are real HF datasets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from examples.make_addition_dataset import build
from tests.conftest import Env, unsettle
from tests.openai_server import FakeOpenAI

# runs the CLI, then says whether the dataset was read (pyarrow or `datasets` imported: a cached rerun needs neither)
PROBE = ("import atexit, runpy, sys\n"
         "atexit.register(lambda: print('read:', 'datasets' in sys.modules or 'pyarrow' in sys.modules,\n"
         "                              'datasets:', 'datasets' in sys.modules))\n"
         "sys.argv = ['nearai', *sys.argv[1:]]\n"
         "runpy.run_module('registry_cli', run_name='__main__')\n")


def probe(env: Env, *args: str) -> tuple[str, bool]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], env=env.vars, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, "read: True" in proc.stdout


def args(ds: Path, server: FakeOpenAI, *more: str) -> tuple[str, ...]:
    return ("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}",
            "--quiet", *more)


def score(out: str) -> str:
    return out.split("Final score: ")[1].split()[0]


def indexes(env: Env) -> list[Path]:
    return sorted((env.home / "cache" / "datasets").rglob("*.json"))


def test_a_cached_rerun_needs_no_import_of_datasets(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=40)
    first, loaded = probe(local_env, *args(ds, server))
    assert loaded and "40 computed" in first and len(indexes(local_env)) == 1
    assert "datasets: False" in first  # plain features: read with pyarrow alone
    again, loaded = probe(local_env, *args(ds, server))
    assert not loaded and "40 cached" in again and score(again) == score(first) and server.requests == 40
    # a selection inside what the index knows is planned from it too; --force must compute, so it loads
    part, loaded = probe(local_env, *args(ds, server, "--limit=10"))
    assert not loaded and "10 cached" in part
    forced, loaded = probe(local_env, *args(ds, server, "--force"))
    assert loaded and "40 computed" in forced and server.requests == 80


def test_what_the_index_lacks_is_loaded_and_learnt(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=30)
    probe(local_env, *args(ds, server, "--limit=10"))
    out, loaded = probe(local_env, *args(ds, server))  # 20 positions the index has not seen: load, compute them
    assert loaded and "10 cached, 20 computed" in out
    out, loaded = probe(local_env, *args(ds, server))
    assert not loaded and "30 cached" in out and server.requests == 30


def test_other_content_at_the_same_path_gets_its_own_index(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=20, seed=1)
    probe(local_env, *args(ds, server))
    import shutil

    shutil.rmtree(ds)
    build(ds, size=20, seed=2)  # same name and size, other datums
    out, loaded = probe(local_env, *args(ds, server))
    assert loaded and "0 cached, 20 computed" in out and len(indexes(local_env)) == 2


def test_a_damaged_index_is_ignored(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=20)
    first, _ = probe(local_env, *args(ds, server))
    (index,) = indexes(local_env)
    head, body = index.read_bytes().split(b"\n", 1)
    doc = json.loads(body)
    doc["hashes"] = doc["hashes"][64:] + doc["hashes"][:64]  # the datums' hashes shifted by one position
    index.write_bytes(head + b"\n" + json.dumps(doc).encode())  # the checksum no longer holds
    unsettle(local_env)  # the run's kept sum would answer without reading the index
    out, loaded = probe(local_env, *args(ds, server))
    assert loaded and "20 cached" in out and score(out) == score(first) and server.requests == 20
    index.write_bytes(b"\x00garbage")
    unsettle(local_env)
    out, loaded = probe(local_env, *args(ds, server))
    assert loaded and "20 cached" in out  # and the load wrote a good index again
    unsettle(local_env)
    out, loaded = probe(local_env, *args(ds, server))
    assert not loaded and "20 cached" in out


def test_recording_a_cached_run_keeps_each_datums_input(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=12)
    probe(local_env, *args(ds, server))
    out, loaded = probe(local_env, *args(ds, server, "--record"))
    assert loaded and "12 cached" in out  # the inputs go into the evaluation entry, so the rows are read
    (solutions,) = [p for p in (local_env.home / "store" / "blobs").rglob("*") if p.is_file() and b'"input"' in p.read_bytes()]
    inputs = [json.loads(line)["input"] for line in solutions.read_text().splitlines()]
    assert len(inputs) == 12 and all(i and " + " in i["input"] for i in inputs)


def test_a_solver_that_reads_the_dataset_gets_it_on_a_cached_rerun(local_env: Env, server: FakeOpenAI,
                                                                    tmp_path: Path) -> None:
    import datasets

    rows = [{"question": f"Question number {i}?", "choices": ["w", "x", "y", "z"], "answer": i % 4, "subject": "s"}
            for i in range(100, 106)]
    datasets.DatasetDict({"dev": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows[:3])}
                         ).save_to_disk(str(tmp_path / "mmlu"))
    run = ("benchmark", "run", str(tmp_path / "mmlu"), "MMLUSolverStrategy", "--subset=test", "--model=fake",
           f"--api_base={server.url}", "--shots=2")
    first, _ = probe(local_env, *run)
    again, loaded = probe(local_env, *run)  # its few-shot examples come from the dev split: loaded on use
    assert loaded and "3 cached" in again and score(again) == score(first) and server.requests == 3


def test_pyarrow_reads_plain_splits_as_datasets_does(tmp_path: Path) -> None:
    import datasets

    from registry_cli.engine.caching.cache import datum_hash
    from registry_cli.engine.planning.arrow import plain_table, rows_of

    rows = [{"n": i, "x": i / 3 if i % 2 else None, "tags": [f"t{i}"] * (i % 3), "nested": {"a": [[i, i + 1]], "b": "ü"},
             "label": i % 2} for i in range(25)]
    features = datasets.Features({"n": datasets.Value("int32"), "x": datasets.Value("float64"),
                                  "tags": datasets.Sequence(datasets.Value("string")),
                                  "nested": {"a": datasets.Sequence(datasets.Sequence(datasets.Value("int64"))),
                                             "b": datasets.Value("string")},
                                  "label": datasets.ClassLabel(names=["no", "yes"])})
    single = datasets.Dataset.from_list(rows, features=features)
    single.select(range(3, 20)).save_to_disk(str(tmp_path / "single"))  # a selection is saved flattened
    datasets.DatasetDict({"train": single, "test": single.select([5, 1])}).save_to_disk(str(tmp_path / "dict"))
    for folder, subset in (("single", ""), ("dict", "train"), ("dict", "test")):
        expected = datasets.load_from_disk(str(tmp_path / folder))
        expected = expected[subset] if subset else expected
        table = plain_table(tmp_path / folder, subset)
        assert table is not None and table.num_rows == len(expected)
        for picked in (tuple(range(len(expected))), (0, len(expected) - 1)):
            got = rows_of(table, picked)
            want = [expected[i] for i in picked]
            assert got == want and [datum_hash(r) for r in got] == [datum_hash(r) for r in want]
    # what pyarrow alone would read differently, or cannot place, is left to `datasets`
    assert plain_table(tmp_path / "dict", "") is None and plain_table(tmp_path / "dict", "nope") is None
    assert plain_table(tmp_path / "single", "train") is None
    other = datasets.Dataset.from_dict({"t": [{"en": "cat", "fr": "chat"}]},
                                       features=datasets.Features({"t": datasets.Translation(languages=["en", "fr"])}))
    other.save_to_disk(str(tmp_path / "other"))  # a feature type it does not know (images, audio, JSON alike)
    assert plain_table(tmp_path / "other", "") is None


def test_datums_with_the_same_content_share_one_answer(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    import datasets

    rows = [{"input": "3 + 5", "output": "8"}, {"input": "1 + 2", "output": "3"}] * 3  # each datum three times
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "3_digit_addition"))
    for _ in range(2):
        out, _ = probe(local_env, *args(tmp_path / "3_digit_addition", server, "--num_repeats=2"))
        assert "12 results" in out and "Final score: 12/12" in out, out
    assert "12 cached" in out and server.requests <= 12
