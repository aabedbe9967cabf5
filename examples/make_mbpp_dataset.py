"""Build an MBPP dataset folder for `nearai benchmark run mbpp MBPPSolverStrategy`.

MBPP is published as one JSON-lines file (``mbpp.jsonl``: task_id, text, code, test_list, test_setup_code,
challenge_test_list). Its authors split it by task id: 1-10 are the few-shot ``prompt`` examples, 11-510 ``test``,
511-600 ``validation`` and 601-974 ``train``. This script applies that split, saves a DatasetDict with
``save_to_disk`` and writes metadata.json:

    python examples/make_mbpp_dataset.py mbpp.jsonl mbpp
    nearai registry upload mbpp
    nearai benchmark run mbpp MBPPSolverStrategy --subset=test --model=...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

SPLITS = (("prompt", 1, 10), ("test", 11, 510), ("validation", 511, 600), ("train", 601, 974))
FIELDS = ("task_id", "text", "code", "test_list", "test_setup_code", "challenge_test_list")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = [f for f in ("task_id", "text", "code", "test_list") if f not in row]
        if missing:
            raise SystemExit(f"{path}:{n}: missing {', '.join(missing)}")
        rows.append({"task_id": int(row["task_id"]), "text": str(row["text"]), "code": str(row["code"]),
                     "test_list": [str(t) for t in row["test_list"]],
                     "test_setup_code": str(row.get("test_setup_code") or ""),
                     "challenge_test_list": [str(t) for t in row.get("challenge_test_list") or []]})
    return rows


def build(source: Path, target: Path) -> Path:
    import datasets

    rows = read_jsonl(source)
    features = datasets.Features({"task_id": datasets.Value("int32"), "text": datasets.Value("string"),
                                  "code": datasets.Value("string"),
                                  "test_list": datasets.Sequence(datasets.Value("string")),
                                  "test_setup_code": datasets.Value("string"),
                                  "challenge_test_list": datasets.Sequence(datasets.Value("string"))})
    splits = {}
    for name, first, last in SPLITS:
        chosen = sorted((r for r in rows if first <= r["task_id"] <= last), key=lambda r: r["task_id"])
        if chosen:
            splits[name] = datasets.Dataset.from_list(chosen, features=features)
    if not splits:
        raise SystemExit(f"{source}: no task ids between 1 and 974")
    datasets.DatasetDict(splits).save_to_disk(str(target))
    meta = {"name": "mbpp", "version": "1.0.0", "category": "dataset",
            "description": "MBPP: Mostly Basic Python Problems, split by task id as its authors did",
            "tags": ["code", "python"], "details": {"splits": {k: len(v) for k, v in splits.items()}},
            "show_entry": True}
    (target / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return target


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path, help="mbpp.jsonl")
    ap.add_argument("target", type=Path, help="folder to create")
    args = ap.parse_args()
    print(build(args.source, args.target))
