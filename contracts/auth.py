"""m3ter's token flow, as a client sees it: ``POST /oauth/token`` with the client id and
secret as HTTP Basic credentials and ``{"grant_type": "client_credentials"}``, then
``Authorization: Bearer <access_token>`` on every other call. The token is kept until
shortly before ``expires_in`` runs out (or until a call answers 401 to it) and then
fetched again."""

from __future__ import annotations

import base64
import threading
import time
from typing import Callable

TOKEN_PATH = "/oauth/token"

# (path, headers, json body) -> (status, parsed JSON body or None)
Post = Callable[[str, dict, dict], "tuple[int, object]"]


class AuthFailed(RuntimeError):
    """No token could be had: every call would be a 401, so the run cannot mean anything."""


def basic_header(client_id: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{password}".encode()).decode("ascii")


class TokenSource:
    def __init__(self, client_id: str, password: str, post: Post, *,
                 clock: Callable[[], float] = time.monotonic, margin_seconds: float = 60.0):
        self.basic = basic_header(client_id, password)
        self._post = post
        self._clock = clock
        self._margin = margin_seconds
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._issued: set[str] = set()
        self.fetches = 0

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                self._fetch()
            return self._token  # type: ignore[return-value]

    def current(self) -> str | None:
        return self._token

    def issued(self, token: str) -> bool:
        """Whether this source ever handed out ``token`` (it may have expired since)."""
        return token in self._issued

    def invalidate(self, token: str | None = None) -> None:
        """Forget the token (the server no longer accepts it); the next call fetches one."""
        with self._lock:
            if token is None or token == self._token:
                self._token = None

    def _fetch(self) -> None:
        started = self._clock()
        status, body = self._post(TOKEN_PATH, {"Authorization": self.basic},
                                  {"grant_type": "client_credentials"})
        self.fetches += 1
        token = body.get("access_token") if isinstance(body, dict) else None
        if status != 200 or not isinstance(token, str) or not token:
            raise AuthFailed(f"POST {TOKEN_PATH} with the configured client credentials answered "
                             f"{status}: {body!r:.300}; no call can be authenticated")
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else 300.0
        # Refresh a little before the end (but never sooner than half-way through a short token).
        self._expires_at = started + max(lifetime - self._margin, lifetime / 2)
        self._token = token
        self._issued.add(token)
