"""Runs inside a bwrap sandbox, before the untrusted command: ``python -I relay_forwarder.py SOCKET PORT -- CMD...``.

The sandbox has no network, only its own loopback. This forwards ``127.0.0.1:PORT`` to the relay's unix socket
(bound in from the host), runs CMD, and exits with its status. Standard library only: nothing of the project is
importable inside.
"""

import socket
import subprocess
import sys
import threading


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _serve(listener: socket.socket, path: str) -> None:
    while True:
        client, _ = listener.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(path)
        except OSError:
            client.close()
            continue
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()


def main() -> int:
    path, port, sep, *cmd = sys.argv[1:]
    if sep != "--" or not cmd:
        print("usage: relay_forwarder.py SOCKET PORT -- CMD...", file=sys.stderr)
        return 2
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(port)))
    listener.listen(64)
    threading.Thread(target=_serve, args=(listener, path), daemon=True).start()
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
