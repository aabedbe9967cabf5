"""The registry core: what every layer above stands on, and nothing above it.

- ``config``: settings from the environment, ``./.nearai/config.json`` and ``$NEARAI_HOME/config.json``;
- ``names``: namespaces, names, versions and manifest paths, checked;
- ``content``: canonical JSON and content digests; ``files``: atomic writes, kernel copies, temp-file owners;
- ``manifest``: an entry version's metadata and file list; ``store``: the object store (a local folder or S3);
- ``registry``: publish, resolve, list and download versioned entries; ``gc``: collect what no version needs;
- ``provenance``: the git commit and package versions a run came from;
- ``flags``: typed flags, declared once (from a signature or a dataclass) and converted with one-line errors.

The core imports no engine, app or shell module.
"""

__all__ = [  # the modules other packages may import
    "config", "content", "env", "files", "flags", "gc", "manifest", "names", "provenance", "registry", "store",
]
