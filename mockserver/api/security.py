"""Connexion security hooks (named in the spec): Basic client credentials on the token
endpoint, Bearer tokens everywhere else. The rules themselves live in
``mockserver.domain.auth``."""

from __future__ import annotations

import functools
import hashlib

from connexion.security import AbstractSecurityHandler, BasicSecurityHandler, OAuthSecurityHandler

from mockserver.domain.auth import Client

from .context import BACKEND_SCOPE_KEY


def client_credentials_info(username, password, request=None):
    backend = request.scope[BACKEND_SCOPE_KEY]
    client = backend.auth.authenticate_client(username, password)
    if client is None:
        return None  # Connexion answers 401
    return {"sub": client.client_id, "client": client}


def bearer_token_info(token, request=None):
    backend = request.scope[BACKEND_SCOPE_KEY]
    info = backend.auth.verify_token(token)
    if info is None:
        if not backend.settings.lenient:
            return None  # Connexion answers 401
        # Lenient: any bearer token is accepted (a stateless mock's SDK suites preset one),
        # as a client bound to no organization. The token itself is never shown as the id.
        client_id = "bearer-" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]
        # "client": what the token endpoint issues for, where lenient_spec lets a bearer in.
        return {"sub": client_id, "scope": [], "client": Client(client_id, "")}
    org_id = org_id_of(request.url.path)
    if org_id is not None:
        info.check_org(org_id)  # 403 for an organization the client is not bound to
    return {"sub": info.client_id, "scope": [], "client": Client(info.client_id, "", info.orgs)}


def org_id_of(path: str) -> str | None:
    parts = path.split("/", 3)
    if len(parts) >= 3 and parts[1] == "organizations":
        return parts[2]
    return None


class _ArgumentsReadOnce:
    """Connexion asks, on every request, whether the hook above takes ``request`` and
    ``required_scopes`` by reading its signature anew; the answer never changes."""

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def _accepts_kwarg(func, keyword: str) -> bool:
        return AbstractSecurityHandler._accepts_kwarg(func, keyword)


class OAuthHandler(_ArgumentsReadOnce, OAuthSecurityHandler):
    pass


class BasicHandler(_ArgumentsReadOnce, BasicSecurityHandler):
    pass


SECURITY_MAP = {"oauth2": OAuthHandler, "basic": BasicHandler}
