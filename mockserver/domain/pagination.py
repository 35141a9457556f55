"""Opaque, tamper-proof cursors for list endpoints.

A ``nextToken`` names the position after the last item of a page (the item's sequence
number in its collection) and is bound to the list that issued it: the organization, the
collection and a fingerprint of the filters. It is signed with a key private to the
running mock, so an altered token, or one replayed against another list, is rejected
with a 400 instead of silently returning the wrong page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from .errors import MockError

_SIG_BYTES = 12


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "==")  # the decoder ignores '=' it does not need


def filter_fingerprint(filters: dict) -> str:
    canonical = json.dumps(filters, sort_keys=True, default=str,
                           separators=(",", ":"),  # pragma: no mutate: only ever compared with itself
                           )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]  # pragma: no mutate: any length will do


@dataclass(frozen=True)
class ListScope:
    """What a cursor is bound to."""

    org_id: str
    collection: str
    filters: dict

    def key(self) -> str:
        return f"{self.org_id}|{self.collection}|{filter_fingerprint(self.filters)}"


class Cursors:
    def __init__(self, secret: bytes):
        self._secret = secret

    def encode(self, scope: ListScope, position: int) -> str:
        # Opaque: only decode() below reads it back.
        payload = json.dumps({"p": position}, separators=(",", ":")).encode()  # pragma: no mutate: opaque
        signature = self._sign(scope, payload)
        return f"{_b64(payload)}.{_b64(signature)}"

    def decode(self, scope: ListScope, token: str) -> int:
        invalid = MockError.bad_request(
            "nextToken: not a token issued by this list (it was altered, or comes from "
            "another organization, collection or set of filters)"
        )
        try:
            payload_text, signature_text = token.split(".")
            payload = _unb64(payload_text)
            signature = _unb64(signature_text)
        except (ValueError, TypeError):
            raise invalid from None
        if not hmac.compare_digest(signature, self._sign(scope, payload)):
            raise invalid
        try:
            position = json.loads(payload)["p"]
        except (ValueError, KeyError, TypeError):
            raise invalid from None
        if not isinstance(position, int):
            raise invalid
        return position

    def _sign(self, scope: ListScope, payload: bytes) -> bytes:
        message = scope.key().encode() + b"\n" + payload  # pragma: no mutate: any separator not in a key
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_SIG_BYTES]
