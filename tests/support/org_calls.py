"""Calls of one organization's m3ter API through an in-process test client, for the test
modules that drive a scenario step by step. A class using it sets ``org`` and has ``client``
and ``auth`` (the bearer header)."""

from __future__ import annotations


class OrgCalls:
    org: str

    def call(self, method: str, path: str, body=None, **query):
        """``path`` under ``/organizations/{org}``; query values that are None are left out."""
        kwargs = {"headers": self.auth, "params": {k: v for k, v in query.items() if v is not None}}
        if body is not None:
            kwargs["json"] = body
        return getattr(self.client, method)(f"/organizations/{self.org}{path}", **kwargs)

    def ok(self, method: str, path: str, body=None, **query):
        """The JSON of a call that must answer 200."""
        response = self.call(method, path, body, **query)
        assert response.status_code == 200, (method, path, response.status_code, response.text)
        return response.json()

    def refused(self, status: int, method: str, path: str, body=None, **query) -> str:
        """The message of a call that must answer ``status``."""
        response = self.call(method, path, body, **query)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json()["message"]


class AppCalls(OrgCalls):
    """``OrgCalls`` on an in-process app, with its backend's clock at hand."""

    def __init__(self, app, client, auth):
        self.app, self.backend, self.client, self.auth = app, app.backend, client, auth

    def advance(self, seconds: float) -> None:
        self.backend.change_clock(advance_seconds=seconds)

    def account(self, code: str, **fields) -> dict:
        return self.ok("post", "/accounts", {"name": code.title(), "code": code,
                                             "emailAddress": f"{code}@example.com", **fields})

    webhook_secret = "pinned-secret"

    def webhook(self, url: str, secret: str | None = None) -> dict:
        """A webhook destination signing with ``secret`` (default: the class's ``webhook_secret``)."""
        return self.ok("post", "/integrationdestinations/webhooks", {
            "name": "Receiver", "description": "d", "url": url,
            "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "key-1",
                            "secret": secret or self.webhook_secret}})

    def attempts(self) -> list[dict]:
        """The organization's delivery attempts, once the deliveries queued have run."""
        response = self.client.get(f"/_mock/deliveries?orgId={self.org}&wait=true")
        assert response.status_code == 200, response.text
        return response.json()["data"]
