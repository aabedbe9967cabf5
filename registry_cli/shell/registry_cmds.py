"""`nearai registry ...`: publish, find and fetch versioned entries."""

from __future__ import annotations

from typing import Any

from registry_cli.core.flags import as_bool, as_list
from registry_cli.errors import UsageError
from registry_cli.shell import render
from registry_cli.shell.commands import command, open_registry


class RegistryCommands:
    """Publish, find and fetch versioned entries (datasets, agents, solvers, evaluations)."""

    @command
    def upload(self, path: str, bump: bool = False, minor_bump: bool = False, major_bump: bool = False) -> None:
        """Publish the folder PATH (with metadata.json) as namespace/name/version.

        Args:
            path: folder holding metadata.json and the files to publish
            bump: the version exists already: publish the next patch version
            minor_bump: the version exists already: publish the next minor version
            major_bump: the version exists already: publish the next major version
        """
        chosen = [n for n, v in (("patch", bump), ("minor", minor_bump), ("major", major_bump)) if v]
        if len(chosen) > 1:
            raise UsageError("pass only one of --bump, --minor_bump, --major_bump")
        from registry_cli.apps.viewer.links import entry_link

        registry = open_registry()
        result = registry.upload(path, chosen[0] if chosen else None)
        render.upload(result)
        render.view_link(entry_link(registry.config.home, result.info.entry))

    @command
    def download(self, entry: str, force: bool = False) -> None:
        """Download ENTRY into ~/.nearai/registry, verifying every file.

        Args:
            entry: namespace/name[/version|latest]
            force: download every file again
        """
        render.download(open_registry().download(entry, force))

    @command
    def gc(self, dry_run: bool = False, grace: str = "24h", verify: bool = True) -> None:
        """Remove manifests and blobs no published version needs (left by killed or raced uploads) and abort
        unfinished uploads, keeping anything younger than the grace period (an upload in progress); remove every
        blob whose bytes do not match its name, whatever its age.

        Args:
            dry_run: only list what would be removed
            grace: keep unreachable objects younger than this: 24h, 30m, 90s
            verify: read every blob and check it against its name (false: skip that read)
        """
        from registry_cli.core.gc import collect_garbage, parse_grace

        render.gc_report(collect_garbage(open_registry(), parse_grace(grace), dry_run, as_bool(verify, "verify")))

    @command
    def info(self, entry: str) -> None:
        """Show metadata and files of ENTRY.

        Args:
            entry: namespace/name[/version|latest]
        """
        from registry_cli.apps.viewer.links import entry_link

        registry = open_registry()
        info = registry.resolve(entry)
        render.info(info)
        render.view_link(entry_link(registry.config.home, info.entry))

    @command
    def list(self, namespace: str = "", category: str = "", tags: str = "", total: int = 32, offset: int = 0,
             show_all: bool = False, show_latest_version: bool = True) -> None:
        """List entries (the latest version of each unless --noshow_latest_version).

        Args:
            namespace: only this namespace
            category: only this category (dataset, agent, solver, evaluation, model)
            tags: only entries with all these comma-separated tags (any case)
            total: how many rows to show
            offset: rows to skip
            show_all: include hidden entries and evaluations of hidden agents or models
            show_latest_version: one row per entry (false: every version)
        """
        from registry_cli.apps.viewer.links import page_link

        if total < 1 or offset < 0:
            raise UsageError("--total must be >= 1 and --offset >= 0", "e.g. --total=32 --offset=0")
        registry = open_registry()
        found = registry.list_entries(namespace=namespace, category=category, tags=as_list(tags),
                                      show_all=show_all, show_latest_version=show_latest_version)
        render.entry_list(found[offset : offset + total], offset, len(found))
        render.skipped(registry.skipped)
        render.view_link(page_link(registry.config.home, "entries", category=category))

    @command
    def metadata_template(self, path: str = ".", category: str = "", description: str = "") -> None:
        """Write a metadata.json template into PATH.

        Args:
            path: the folder to describe
            category: dataset, agent, solver, evaluation or model
            description: one line about the entry
        """
        render.message(f"wrote {open_registry().metadata_template(path, category, description)}")

    @command
    def update(self, target: str = ".", show_entry: str = "", description: str = "", tags: str = "") -> None:
        """Change a published version's description, tags, details, category or visibility.

        Args:
            target: a folder whose metadata.json names the version, or an entry namespace/name/version
            show_entry: true or false: show or hide the entry (hidden entries need --show_all)
            description: a new description
            tags: new comma-separated tags
        """
        changes: dict[str, Any] = {}
        if show_entry:
            changes["show_entry"] = as_bool(show_entry, "show_entry")
        if description:
            changes["description"] = description
        if tags:
            changes["tags"] = as_list(tags)
        info = open_registry().update(target, changes)
        render.message(f"updated metadata of {info.entry}")
