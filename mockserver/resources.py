"""Where the files the mock ships with are: the OpenAPI documents and the contract suite.

They live at the top of the source tree (``openapi/``, ``contracts/``) and are installed as
the packages ``mockserver.openapi`` and ``mockserver.contracts`` (pyproject.toml maps them),
so a wheel, ``pip install .`` and an editable install all find them the same way, from any
working directory. Every user of these paths asks here."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SPEC_PACKAGE = "mockserver.openapi"
CONTRACTS_PACKAGE = "mockserver.contracts"


def _directory(package: str) -> Path:
    try:
        location = resources.files(package)
    except ModuleNotFoundError:
        # An editable install made before the package mapping existed knows only
        # ``mockserver``; its finder must be regenerated.
        raise RuntimeError(f"{package} is not installed: reinstall m3ter-mock "
                           f"(in a source checkout: pip install -e .)") from None
    if not isinstance(location, Path):
        # Connexion, the validator and pytest all need real files.
        raise RuntimeError(f"{package} is not on the file system ({location}): install m3ter-mock unzipped")
    return location


def spec_dir() -> Path:
    return _directory(SPEC_PACKAGE)


def spec_path(name: str = "m3ter.yaml") -> Path:
    """``m3ter.yaml`` (the m3ter API) or ``admin.yaml`` (the mock's ``/_mock`` API)."""
    return spec_dir() / name


def contracts_dir() -> Path:
    return _directory(CONTRACTS_PACKAGE)
