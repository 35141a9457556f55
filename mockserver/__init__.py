"""m3ter-mock: a stateful mock of the m3ter API.

``sign`` and ``verify`` check webhook requests the way an m3ter receiver must (the
M3TER_SIGNED_REQUEST scheme); they need only the standard library. ``create_app`` builds
the server (imported lazily, so receivers importing the helpers don't load the web stack).
"""

from .domain.signing import sign, signed_headers, verify

__all__ = ["create_app", "sign", "signed_headers", "verify"]


def __getattr__(name):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
