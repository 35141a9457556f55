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


# -- the parsed copies of the specs -------------------------------------------------------------
# Parsing m3ter.yaml is most of a second (libyaml scans it, but Python builds every node);
# the same document as JSON loads in a twentieth of that. Each YAML spec may have a parsed
# copy beside it (``m3ter.parsed.json``: the YAML file's SHA-256 and the document), written by
# ``tools/parsed_specs.py``. The YAML file stays the one source: a copy whose hash does not
# match it is ignored, and tests/test_spec.py fails until the copy is written again.

def parsed_copy_path(path: Path) -> Path:
    return path.with_name(path.stem + ".parsed.json")


def read_spec(path: Path) -> dict:
    """The document of the YAML spec at ``path``, from its parsed copy when that is current."""
    import hashlib
    import json

    raw = path.read_bytes()
    copy = parsed_copy_path(path)
    if copy.is_file():
        with open(copy, encoding="utf-8") as handle:
            parsed = json.load(handle)
        if parsed.get("sha256") == hashlib.sha256(raw).hexdigest():
            return parsed["document"]
    import yaml

    return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def write_parsed_copy(path: Path) -> Path:
    import hashlib
    import json

    import yaml

    raw = path.read_bytes()
    document = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    copy = parsed_copy_path(path)
    # Compact, one line: it is read by programs only; json.dumps refuses what JSON cannot
    # hold (a YAML date), so a copy is never a lossy one.
    copy.write_text(json.dumps({"sha256": hashlib.sha256(raw).hexdigest(), "document": document},
                               separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8")
    return copy
