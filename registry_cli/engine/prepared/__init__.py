"""Prepared tasks, as the rollouts orchestrator makes them: a folder with ``tb_meta.json`` (the repository, the
instructions, the rubrics and their test scripts), a Dockerfile and overlay files.

- ``task``: reading a task, applying its overrides to a private copy, the prompt, upstream's rubric arithmetic and
  report;
- ``images``: building a task's image once per content (content-addressed tags: no two builds race on one tag), and
  the scripts that run the agent and the tests inside its containers.
"""

__all__ = ["images", "task"]
