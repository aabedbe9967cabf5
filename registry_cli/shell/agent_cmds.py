"""`nearai agent ...`, `nearai config ...` and the commands without a group (version, submit)."""

from __future__ import annotations

from registry_cli.errors import UsageError
from registry_cli.shell import render
from registry_cli.shell.commands import command, open_registry


class AgentCommands:
    """Create, try and publish agents (upstream nearai's agent.py format runs unchanged)."""

    @command
    def create(self, path: str = "", name: str = "", description: str = "", model: str = "") -> None:
        """Start a new agent in the folder PATH (default: NAME/0.0.1, upstream's layout): metadata.json and an
        agent.py to edit.

        Args:
            path: the new agent's folder (absent or empty); a NAME/VERSION folder names the agent and version
            name: the agent's name (default: the folder's)
            description: one line about the agent
            model: default model, used when a run gives no --model
        """
        from registry_cli.apps.agentdev import create_agent

        folder = create_agent(path, name, description, model)
        render.message(f"created agent {folder}; try it with: nearai agent task {folder} \"your task\" --model=MODEL")

    @command
    def upload(self, path: str = ".", bump: bool = False) -> None:
        """Publish the agent folder PATH (agent.py + metadata.json) to the registry.

        Args:
            path: the agent's folder
            bump: the version exists already: publish the next patch version
        """
        from registry_cli.apps.agentdev import upload_agent

        render.upload(upload_agent(open_registry(), path, "patch" if bump else None))

    @command
    def task(self, agent: str, task: str, model: str = "", api_base: str = "", sandbox: str = "auto",
             timeout: float = 120.0, verbose: bool = False) -> None:
        """Run AGENT once on TASK in the sandbox and print its answer.

        Args:
            agent: agent folder or registry entry
            task: the task text (the agent's first user message)
            model: model under test (default: the agent's details.agent.defaults)
            api_base: OpenAI-compatible endpoint for the model
            sandbox: auto, bwrap, docker, podman or native
            timeout: seconds allowed
            verbose: also show the agent's messages, system logs and prints
        """
        from registry_cli.apps.agentdev import run_task
        from registry_cli.errors import AgentError

        answer = run_task(open_registry(), agent, task, model, api_base, sandbox, timeout)
        render.agent_answer(answer, verbose)
        if answer.error:
            raise AgentError(answer.error, "rerun with --verbose to see its log")


class ConfigCommands:
    """Show and change settings (store, namespace, sandbox, ...) in ~/.nearai or ./.nearai."""

    @command
    def set(self, key: str, value: str, local: bool = False) -> None:
        """Set KEY to VALUE in $NEARAI_HOME/config.json (or ./.nearai/config.json with --local).

        Args:
            key: store, s3_endpoint_url, namespace, sandbox or s3_max_attempts
            value: the new value ("" removes the key)
            local: write this project's ./.nearai/config.json instead
        """
        from registry_cli.core.config import set_value

        path = set_value(key, value, local)
        render.message(f"{key} = {value} in {path}" if value else f"removed {key} from {path}")

    @command
    def get(self, key: str) -> None:
        """Print the value of KEY and where it comes from.

        Args:
            key: store, s3_endpoint_url, namespace, sandbox or s3_max_attempts
        """
        from registry_cli.core.config import check_key, settings

        check_key(key)
        found = settings().get(key)
        render.message(f"{key} = {found.value}  ({found.source})" if found else f"{key} is not set")

    @command
    def show(self) -> None:
        """Every setting in effect and where it comes from."""
        from registry_cli.core.config import effective_settings, home_dir

        render.settings(effective_settings(), str(home_dir()))


class TopCommands:
    """Commands without a group."""

    @command
    def version(self) -> None:
        """Print the installed version."""
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as installed

        try:
            render.message(f"nearai {installed('nearai-bench')}")
        except PackageNotFoundError:
            render.message("nearai (not installed: running from a source tree)")

    @command
    def submit(self, command: str = "", name: str = "", nodes: int = 1, cluster: str = "", status: str = "",
               logs: str = "") -> None:
        """Run COMMAND as a Ray job on a cluster with this folder as its working directory; or follow a job.

        Args:
            command: the shell command the job runs, e.g. "nearai benchmark run ..."
            name: the experiment's name (the job id starts with it)
            nodes: alive nodes the cluster must have
            cluster: the Ray dashboard address (default: $RAY_API_SERVER_ADDRESS or http://127.0.0.1:8265)
            status: show the status of this job id instead of submitting
            logs: print the logs of this job id instead of submitting
        """
        from registry_cli.apps import jobs

        if status or logs:
            if command or name:
                raise UsageError("--status and --logs follow a job: drop --command and --name")
            if status:
                render.job(jobs.job_status(status, cluster))
            if logs:
                render.raw(jobs.job_logs(logs, cluster))
            return
        if not command or not name:
            raise UsageError("nearai submit needs --command and --name",
                             'e.g. nearai submit --command "nearai benchmark run ..." --name=my-run')
        render.job(jobs.submit(command, name, nodes, cluster))
