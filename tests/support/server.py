"""A real HTTP server around an app, on a free loopback port, for tests that need one
(the SDK, receivers, the contract suite over HTTP). It stops when the block ends."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import uvicorn


@contextmanager
def serve_in_thread(app, host: str = "127.0.0.1"):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        # The mock learns the addresses it is served on and never delivers to them; once this
        # server is gone its port may go to a test's webhook receiver, which must be reachable.
        backend = getattr(app, "backend", None)
        if backend is not None:
            backend.own_addresses.discard((host, port))
