"""Webhook integration destinations, with M3TER_SIGNED_REQUEST credentials.

The credential's secret signs every delivery and "never leaves m3ter's servers": it is
kept under an internal key and shown only in the response to the create call. The URL
must pass the webhook policy (no link-local or cloud-metadata hosts; the allow list when
one is configured).
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from mockserver.domain.errors import MockError
from mockserver.domain.webhook_policy import WebhookPolicy

from ..crud import Caller, CrudService, ResourceKind, public_view

WRITABLE = ("name", "description", "code", "url")


def check_url(url: str, policy: WebhookPolicy | None = None) -> None:
    """An http(s) URL with a host that the webhook policy lets deliveries reach (checked
    again, on the resolved addresses, at every delivery)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # raises on a malformed port
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise MockError.bad_request(f"url: {url!r} is not an http(s) URL with a host")
    import httpx  # here, not at start-up: importing it is a measured part of start-up time

    try:
        # The host as the delivery will use it (httpx folds some spellings, e.g. U+3002 dots).
        host = httpx.URL(url).raw_host.decode("ascii") or host  # pragma: no mutate  codec names ignore case
    except (httpx.InvalidURL, UnicodeError):
        pass
    reason = (policy or WebhookPolicy()).check_host(host)
    if reason:
        raise MockError.bad_request(f"url: {reason}")


def prepare(backend, caller, body, existing):
    check_url(body["url"], backend.deliveries.webhook_policy())
    fields = {k: body[k] for k in WRITABLE if body.get(k) is not None}
    fields["active"] = body.get("active", True)
    sent = body["credentials"]
    credentials = {
        "id": existing["credentials"]["id"] if existing else str(uuid.uuid4()),
        "type": sent["type"],
        "apiKey": sent["apiKey"],
        "version": existing["credentials"]["version"] + 1 if existing else 1,
    }
    if sent.get("name"):
        credentials["name"] = sent["name"]
    fields["credentials"] = credentials
    fields["_secret"] = sent["secret"]
    return fields


def view(entity: dict) -> dict:
    shown = public_view(entity)
    shown["credentials"] = {
        **entity["credentials"],
        "destination": "WEBHOOK",
        "destinationId": entity["id"],
        "dtCreated": entity["dtCreated"],
        "dtLastModified": entity["dtLastModified"],
        "createdBy": entity["createdBy"],
        "lastModifiedBy": entity["lastModifiedBy"],
    }
    return shown


def created_view(entity: dict) -> dict:
    shown = view(entity)
    shown["credentials"]["secret"] = entity["_secret"]
    return shown


KIND = ResourceKind(
    collection="webhooks",
    label="WebhookDestination",
    prepare=prepare,
    view=view,
    created_view=created_view,
)


class WebhookService(CrudService):
    def set_active(self, caller: Caller, webhook_id: str, active: bool) -> dict:
        return self.modify(caller, webhook_id, {"active": active})

    def signing_credentials(self, org_id: str, webhook_id: str) -> tuple[str, str] | None:
        """(apiKey, secret) for signing a delivery; for the delivery worker only (no caller:
        the worker acts for nobody)."""
        entity = self.backend.store.peek(org_id, self.kind.collection).get(webhook_id)
        if entity is None:
            return None
        return entity["credentials"]["apiKey"], entity["_secret"]
