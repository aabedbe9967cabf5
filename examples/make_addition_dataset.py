"""Build the docs' "3 digit addition" dataset (1000 examples) with HF datasets and save it to disk.

    python examples/make_addition_dataset.py 3_digit_addition [--size 1000]
    nearai registry upload 3_digit_addition
"""

from __future__ import annotations

import argparse
import json
import random
from itertools import product
from pathlib import Path


def build(path: Path, size: int = 1000, seed: int = 42) -> Path:
    import datasets

    rng = random.Random(seed)
    pairs = rng.sample(list(product(range(1000), range(1000))), size)
    ds = datasets.Dataset.from_dict(
        {"input": [f"{a} + {b}" for a, b in pairs], "output": [str(a + b) for a, b in pairs]},
        features=datasets.Features({"input": datasets.Value("string"), "output": datasets.Value("string")}),
    )
    ds.save_to_disk(str(path))
    meta = {"name": "3_digit_addition", "version": "1.0.0", "category": "dataset",
            "description": f"{size} additions of two numbers below 1000", "tags": ["math", "example"],
            "details": {"seed": seed}, "show_entry": True}
    (path / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("path", type=Path)
    ap.add_argument("--size", type=int, default=1000)
    args = ap.parse_args()
    print(build(args.path, args.size))
