"""Connexion security hooks (named in the spec): Basic client credentials on the token
endpoint, Bearer tokens everywhere else. The rules themselves live in
``mockserver.domain.auth``."""

from __future__ import annotations

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
        return None  # Connexion answers 401
    org_id = org_id_of(request.url.path)
    if org_id is not None:
        info.check_org(org_id)  # 403 for an organization the client is not bound to
    return {"sub": info.client_id, "scope": []}


def org_id_of(path: str) -> str | None:
    parts = path.split("/", 3)
    if len(parts) >= 3 and parts[1] == "organizations":
        return parts[2]
    return None
