"""Helpers for tests that run ``m3ter-mock serve`` as a user does, in a process of its own."""

from __future__ import annotations

import socket
import threading


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(port: int, process=None, attempts: int = 400) -> None:
    """uvicorn binds the port a moment after the mock logs that it is serving; with
    ``process``, stop waiting as soon as it has exited."""
    for _ in range(attempts):
        if process is not None and process.poll() is not None:
            raise RuntimeError("the mock exited before it listened")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
            return
        except OSError:
            threading.Event().wait(0.025)
    raise RuntimeError(f"nothing listens on port {port}")


def serving_line(process) -> str | None:
    """The "serving on ..." line of a mock started with text-mode stdout (None if it exits
    without one); the lines before it are read and dropped."""
    for line in process.stdout:
        if "serving on" in line:
            return line
    return None
