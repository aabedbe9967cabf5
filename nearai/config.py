"""Upstream's ``nearai.config`` names that solvers and agents read: the prompts folder of the built-in solvers'
templates (this project's own text, under upstream's file names and variables), the data folder, and a
configuration object with upstream's attributes. Standard library only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROMPTS_FOLDER = Path(__file__).resolve().parent / "prompts"
REPO_FOLDER = Path(__file__).resolve().parent.parent
DATA_FOLDER = Path.home() / ".nearai"
CONFIG_FILE = DATA_FOLDER / "config.json"


@dataclass
class Config:
    """Upstream's settings object. Only what makes sense without a hub has an effect here: none of it does for a
    benchmark run (the run's flags decide), but agents that read these attributes find them."""

    origin: str | None = None
    api_url: str | None = None
    inference_url: str = ""
    inference_api_key: str = ""
    scheduler_account_id: str = ""
    nearai_hub: dict[str, Any] = field(default_factory=dict)
    confirm_commands: bool = False
    auth: Any = None
    num_inference_retries: int = 1

    def update_with(self, extra_config: dict[str, Any], map_key: Any = lambda x: x) -> Config:
        for key, value in extra_config.items():
            key = map_key(key)
            if hasattr(self, key):
                setattr(self, key, value)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def get_client_config(self) -> Config:
        return self


def load_config_file(local: bool = False) -> dict[str, Any]:
    """The JSON settings file upstream kept (``~/.nearai/config.json``, or ``.nearai/config.json`` with ``local``);
    an empty dict when there is none or it is not an object."""
    path = Path(".nearai/config.json") if local else CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_config() -> Config:
    return Config().update_with({k: v for k, v in load_config_file().items() if isinstance(k, str)})


CONFIG = Config()

__all__ = ["CONFIG", "CONFIG_FILE", "DATA_FOLDER", "PROMPTS_FOLDER", "REPO_FOLDER", "Config", "load_config",
           "load_config_file"]
