"""A prepared task folder read as upstream's orchestrator reads it (``tb_meta.json``: ``repo``, ``lm.instructions``
or ``task.instructions``, ``evaluation.rubrics[{id, criterion, weight}]`` and ``evaluation.test_scripts[{path,
content, rubric_id}]``), its overrides applied to a private copy (the folder itself is never written), and graded
with upstream's arithmetic: a rubric's score is passed/total of its tests (None when it has none), the total is
sum(weight x score) / sum(weight)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from registry_cli.errors import DatasetError

META = "tb_meta.json"


def is_prepared(path: Path) -> bool:
    return path.is_dir() and (path / META).is_file()


def read_meta(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{folder / META} cannot be read: {e}", "a prepared task's tb_meta.json is a JSON object") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{folder / META} must be a JSON object", "see the rollouts guide's prepared task format")
    if not (folder / "Dockerfile").is_file():
        raise DatasetError(f"{folder} has no Dockerfile", "a prepared task folder holds tb_meta.json and a Dockerfile")
    return meta


def load_prepared(folder: Path) -> list[dict[str, Any]]:
    """The task as one datum: its name, where it is, and its metadata (the content is keyed by the source's hash)."""
    return [{"task": folder.resolve().name, "dir": str(folder.resolve()), "meta": read_meta(folder)}]


def read_overrides(path: str) -> dict[str, Any]:
    if not path:
        return {}
    try:
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"overrides {path} cannot be read: {e}", "overrides.json is a JSON object") from None
    if not isinstance(data, dict):
        raise DatasetError(f"overrides {path} must be a JSON object", "see the rollouts guide on overrides")
    return data


def _inside(base: Path, rel: str) -> Path:
    target = (base / rel).resolve()
    if not target.is_relative_to(base.resolve()) or rel.startswith("/"):
        raise DatasetError(f"override path {rel!r} leaves its folder", "overlay paths are relative, without '..'")
    return target


def apply_overrides(context: Path, overrides: dict[str, Any]) -> None:
    """Upstream's overrides, on the build context copy: the prompt (``prompt`` / ``lm_instructions`` as
    overlay_files/LM_INSTRUCTIONS.md), ``overlay_files`` (under /app), ``overlay_repo_files`` (under /app/repo),
    ``remove_repo_paths``, and ``evaluation`` (or ``rubrics`` / ``test_scripts``) and ``repo`` in tb_meta.json."""
    overlay, repo_overlay = context / "overlay_files", context / "overlay_repo_files"
    overlay.mkdir(exist_ok=True)
    repo_overlay.mkdir(exist_ok=True)
    prompt = overrides.get("prompt", overrides.get("lm_instructions"))
    if isinstance(prompt, str) and prompt:
        (overlay / "LM_INSTRUCTIONS.md").write_text(prompt)
    for key, base in (("overlay_files", overlay), ("overlay_repo_files", repo_overlay)):
        for rel, text in (overrides.get(key) or {}).items():
            target = _inside(base, str(rel))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(str(text))
    removed = overrides.get("remove_repo_paths")
    if isinstance(removed, list) and removed:
        (overlay / "remove_repo_paths.txt").write_text("".join(f"{p}\n" for p in removed))
    meta = json.loads((context / META).read_text(encoding="utf-8"))
    if any(k in overrides for k in ("evaluation", "rubrics", "test_scripts")):
        meta["evaluation"] = overrides.get("evaluation") or {"rubrics": overrides.get("rubrics") or [],
                                                            "test_scripts": overrides.get("test_scripts") or []}
    if isinstance(overrides.get("repo"), dict):
        meta["repo"] = overrides["repo"]
    (context / META).write_text(json.dumps(meta, indent=2))


def prompt_of(context: Path, meta: dict[str, Any]) -> str:
    """The agent's instructions: overlay_files/LM_INSTRUCTIONS.md, else tb_meta's ``lm.instructions`` (or
    ``task.instructions``), as the upstream box reads them."""
    written = context / "overlay_files" / "LM_INSTRUCTIONS.md"
    if written.is_file():
        return written.read_text(encoding="utf-8")
    for section in ("lm", "task"):
        found = (meta.get(section) or {}).get("instructions") if isinstance(meta.get(section), dict) else None
        if isinstance(found, str) and found.strip():
            return found
    raise DatasetError("the task has no instructions", "set lm.instructions in tb_meta.json or a prompt override")


def test_scripts(meta: dict[str, Any]) -> list[dict[str, Any]]:
    scripts = (meta.get("evaluation") or {}).get("test_scripts") or []
    return [s for s in scripts if isinstance(s, dict) and isinstance(s.get("path"), str) and s["path"]]


def rubric_scores(meta: dict[str, Any], passed: dict[str, bool]) -> dict[str, Any]:
    """Upstream's evaluation of rubrics from test results (path -> passed)."""
    evaluation = meta.get("evaluation") or {}
    rubrics = [r for r in evaluation.get("rubrics") or [] if isinstance(r, dict) and r.get("id")]
    scripts = test_scripts(meta)
    scores: dict[str, Any] = {}
    for rubric in rubrics:
        tests = [s for s in scripts if s.get("rubric_id") == rubric["id"]]
        ok = sum(1 for s in tests if passed.get(s["path"], False))
        score = ok / len(tests) if tests else None
        weight = float(rubric.get("weight", 0.0))
        scores[str(rubric["id"])] = {"criterion": str(rubric.get("criterion", "")), "weight": weight, "score": score,
                                     "max_score": 1.0, "weighted_score": score * weight if score is not None else None,
                                     "test_count": len(tests), "tests_passed": ok}
    total_weight = sum(float(r.get("weight", 0.0)) for r in rubrics)
    earned = sum(r["weighted_score"] for r in scores.values() if r["weighted_score"] is not None)
    return {"rubrics": scores, "total_score": earned / total_weight if total_weight > 0 else 0.0, "max_score": 1.0}


def markdown(task: str, evaluation: dict[str, Any], metrics: dict[str, Any], tests: dict[str, str]) -> str:
    """scoring_results.md: the total, each rubric, and each test's outcome."""
    lines = [f"# Scoring results: {task}", "", f"**Total score: {evaluation['total_score']:.0%}**", "",
             "| rubric | weight | score | tests | criterion |", "|---|---|---|---|---|"]
    for rid, r in evaluation["rubrics"].items():
        score = "n/a" if r["score"] is None else f"{r['score']:.0%}"
        lines.append(f"| `{rid}` | {r['weight']:.0%} | {score} | {r['tests_passed']}/{r['test_count']} | {r['criterion']} |")
    lines += ["", "## Tests", ""] + [f"- `{path}`: {outcome}" for path, outcome in sorted(tests.items())]
    lines += ["", "## Agent", "", *(f"- {k}: {v}" for k, v in metrics.items()), ""]
    return "\n".join(lines)


__all__ = ["META", "apply_overrides", "is_prepared", "load_prepared", "markdown", "prompt_of", "read_meta",
           "read_overrides", "rubric_scores", "test_scripts"]
