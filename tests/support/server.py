"""A real HTTP server around an app, on a free loopback port, for tests that need one
(the SDK, receivers, the contract suite over HTTP). It stops when the block ends. It is the
package's own (mockserver/testing.py), which the pytest plugin serves the session's mock with."""

from mockserver.testing import serve_in_thread

__all__ = ["serve_in_thread"]
