"""The mock as the contract suite serves it over HTTP: in a process of its own (so the
server has the machine's other core), on a listening socket the suite bound on
127.0.0.1 and hands down, so there is no port to race for. Prints ``ready`` once it
accepts connections; stops when the suite closes its standard input or terminates it.
Its admin API needs the token the suite put in ``M3TER_CONTRACT_ADMIN_TOKEN``.

    python -m contracts.serve FD             # installed: python -m mockserver.contracts.serve FD
"""

from __future__ import annotations

import socket
import sys
import threading

import uvicorn

from .target import make_mock_app


class _Server(uvicorn.Server):
    async def startup(self, sockets=None):
        await super().startup(sockets=sockets)
        print("ready", flush=True)


def main(argv: list[str]) -> int:
    # socket.socket(fileno=...) keeps the socket's family (uvicorn's own `fd` option assumes a
    # Unix socket, and asyncio then leaves Nagle's algorithm on: 40 ms per response).
    sock = socket.socket(fileno=int(argv[0]))
    server = _Server(uvicorn.Config(make_mock_app(), log_level="warning", access_log=False, lifespan="off"))

    def stop_when_parent_goes():
        sys.stdin.read()  # EOF: the suite is gone or done
        server.should_exit = True

    threading.Thread(target=stop_when_parent_goes, daemon=True).start()
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
