"""An AutoGenBench run folder: what goes in besides the template (``run.sh``, the global includes), how it is written
(names from data stay inside), what a finished run means (`crash`), and the model files written for the relay.

``run.sh`` takes AutoGenBench's steps and prints its console markers: the init scripts, ``python scenario.py``
(``SCENARIO.PY COMPLETE`` or ``SCENARIO.PY EXITED WITH CODE: N``, then ``SCENARIO.PY RUNTIME: S``), the finalize
scripts, and ``SCENARIO COMPLETE`` only when scenario.py exited with 0: a crash is never a verdict. Requirements are
installed outside the sandbox (see `requirements`), so run.sh installs nothing.

The global includes are this project's own: ``global_init.sh`` and ``global_finalize.sh`` (as AutoGenBench's, they
print the testbed setting) and ``testbed_utils.py``, the helper 0.2-era scenarios import (``init``,
``default_llm_config``, ``finalize``), written here.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from registry_cli.engine.isolation.boundary import write_inside

COMPLETE_MARKER = "SCENARIO COMPLETE !#!#"
PASSED_MARKER = "ALL TESTS PASSED !#!#"
SCENARIO_DONE = "SCENARIO.PY COMPLETE !#!#"
CRASH_MARKER = "SCENARIO.PY EXITED WITH CODE: "
BINARY_PREFIX = "base64:"
RUN_SH = f"""#!/bin/bash
# written by nearai: AutoGenBench's scenario execution steps, with its console markers
cd "$(dirname "$0")"
echo "RUN.SH STARTING !#!#"
export AUTOGEN_TESTBED_SETTING="${{AUTOGEN_TESTBED_SETTING:-Native}}"
[ -f global_init.sh ] && . ./global_init.sh
[ -f scenario_init.sh ] && . ./scenario_init.sh
[ -s requirements.txt ] && echo "nearai: requirements.txt was installed outside the sandbox (on PYTHONPATH, read-only)"
echo "SCENARIO.PY STARTING !#!#"
start_time=$(date +%s)
python scenario.py
EXIT_CODE=$?
end_time=$(date +%s)
if [ $EXIT_CODE -ne 0 ]; then echo "{CRASH_MARKER}$EXIT_CODE !#!#"; else echo "{SCENARIO_DONE}"; fi
echo "SCENARIO.PY RUNTIME: $((end_time - start_time)) !#!#"
rm -rf .cache __pycache__
[ -f scenario_finalize.sh ] && . ./scenario_finalize.sh
[ -f global_finalize.sh ] && . ./global_finalize.sh
[ $EXIT_CODE -eq 0 ] && echo "{COMPLETE_MARKER}"
echo "RUN.SH COMPLETE !#!#"
"""
GLOBAL_INIT = "# Global init (written by nearai).\necho AUTOGEN_TESTBED_SETTING: [$AUTOGEN_TESTBED_SETTING]\n"
GLOBAL_FINALIZE = "# Global finalize (written by nearai).\necho AUTOGEN_TESTBED_SETTING: [$AUTOGEN_TESTBED_SETTING]\n"
TESTBED_UTILS = (Path(__file__).parent / "testbed_utils.py.txt").read_text(encoding="utf-8")


def global_includes() -> dict[str, str]:
    """What every run folder starts with, before the template is copied over it (AutoGenBench's order)."""
    return {"global_init.sh": GLOBAL_INIT, "global_finalize.sh": GLOBAL_FINALIZE, "testbed_utils.py": TESTBED_UTILS}


def crash(console: str) -> str:
    """Why a finished run is not a verdict: scenario.py's non-zero exit, or no completion marker ("" otherwise)."""
    at = console.rfind(CRASH_MARKER)
    if at >= 0:
        code = console[at + len(CRASH_MARKER):].split(" ", 1)[0]
        return f"crashed: scenario.py exited with code {code}"
    if COMPLETE_MARKER not in console:
        return f"crashed: no '{COMPLETE_MARKER}' in the console log"
    return ""


def default_verdict(console: str) -> bool | None:
    """AutoGenBench's default scorer: passed with ``ALL TESTS PASSED``, failed when scenario.py completed without it,
    None (no verdict) otherwise."""
    if PASSED_MARKER in console:
        return True
    if SCENARIO_DONE in console:
        return False
    return None


def read_text_or_bytes(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode()
    except UnicodeDecodeError:
        return BINARY_PREFIX + base64.b64encode(data).decode()


def write_files(folder: Path, files: dict[str, str], where: str) -> None:
    """A scenario's files into its run folder; names come from data, so each is checked and written strictly inside
    ``folder`` (`boundary.write_inside`)."""
    for name, content in files.items():
        data = base64.b64decode(content[len(BINARY_PREFIX):]) if content.startswith(BINARY_PREFIX) else content.encode()
        write_inside(folder, name, data, where)


def model_files(files: dict[str, str], relay_env: dict[str, str], model: str, listed: list[str]) -> dict[str, str]:
    """The model configuration a scenario reads, pointed at the relay with its placeholder key: ``OAI_CONFIG_LIST``
    (AutoGen 0.2) with an entry for the run's model and for every model name the user's own list held (scenarios
    filter it by name; the relay answers every name with the run's model), and a ``config.yaml`` (AgentChat) whose
    ``model_config.config`` gets the relay's ``base_url`` and ``api_key``. Nothing of the user's keys goes in."""
    base, key = relay_env.get("OPENAI_BASE_URL", ""), relay_env.get("OPENAI_API_KEY", "")
    names = list(dict.fromkeys([model, *listed]))
    out = {"OAI_CONFIG_LIST": json.dumps([{"model": n, "api_key": key, "base_url": base} for n in names if n],
                                         indent=2) + "\n"}
    if "config.yaml" in files:
        out["config.yaml"] = _relayed_yaml(files["config.yaml"], base, key)
    return out


def _relayed_yaml(text: str, base: str, key: str) -> str:
    import yaml

    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # not ours to fix: the scenario reports it
    if isinstance(data, dict) and isinstance(data.get("model_config"), dict):
        config = data["model_config"].setdefault("config", {})
        if isinstance(config, dict):
            config["base_url"], config["api_key"] = base, key
    return str(yaml.safe_dump(data, sort_keys=False))


__all__ = ["BINARY_PREFIX", "COMPLETE_MARKER", "PASSED_MARKER", "RUN_SH", "crash", "default_verdict",
           "global_includes", "model_files", "read_text_or_bytes", "write_files"]
