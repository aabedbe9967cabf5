from registry_cli.cli import entrypoint

entrypoint()
