"""Which browser origins may read the m3ter API's answers (``serve --cors``).

An origin is compared as a browser sends it in the ``Origin`` header: ``scheme://host`` with
the port only when it is not the scheme's default, lower case, no path. Configured origins are
brought to that form, so ``http://LocalHost:80/`` matches what a page on
``http://localhost`` sends."""

from __future__ import annotations

import re
from dataclasses import dataclass

ANY = "*"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ORIGIN = re.compile(r"^(?P<scheme>https?)://(?P<host>\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)"
                     r"(?::(?P<port>[0-9]{1,5}))?/?$")
# A header name as RFC 9110 defines a token.
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


def parse_origin(text: str) -> str:
    """``*``, or the origin in the form a browser sends it; a ValueError saying what an
    origin looks like otherwise."""
    value = text.strip()
    if value == ANY:
        return ANY
    match = _ORIGIN.match(value.lower())
    port = match and match["port"]
    if match is None or (port is not None and not 1 <= int(port) <= 65535):
        raise ValueError(f"{text!r} is not an origin: give scheme://host[:port] (http or https, no path) or *")
    scheme, host = match["scheme"], match["host"]
    if port is None or int(port) == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{int(port)}"


@dataclass(frozen=True)
class CorsPolicy:
    origins: frozenset[str]

    @classmethod
    def from_values(cls, values) -> "CorsPolicy | None":
        """None when no origin is given: CORS stays off."""
        origins = frozenset(parse_origin(v) for v in values)
        return cls(origins) if origins else None

    @property
    def any_origin(self) -> bool:
        return ANY in self.origins

    def allow_origin(self, origin: str) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for a request from ``origin``, or None
        when that origin is not allowed. ``*`` stays ``*``: the m3ter API authenticates by a
        bearer header, never by cookies, so no answer needs credentials mode."""
        if self.any_origin:
            return ANY
        return origin if origin in self.origins else None

    @staticmethod
    def allow_headers(requested: str | None) -> str:
        """Every header a preflight asks for (the mock reads none it would refuse), and
        always Authorization and Content-Type; anything that is not a header name is
        dropped."""
        names = ["authorization", "content-type"]
        for name in (requested or "").split(","):
            name = name.strip().lower()
            if name and _TOKEN.match(name) and name not in names:
                names.append(name)
        return ", ".join(names)
