from registry_cli.shell.cli import entrypoint

entrypoint()
