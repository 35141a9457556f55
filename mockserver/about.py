"""What the installed mock says about itself (``m3ter-mock --version``, ``GET /_mock/health``)."""

from __future__ import annotations

DISTRIBUTION = "m3ter-mock"


def version() -> str:
    """The installed distribution's version: the one source is pyproject.toml, through the
    package metadata, so the two can never disagree. A source tree run without installing
    has no metadata."""
    from importlib import metadata  # only when asked: it is slow to import

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"
