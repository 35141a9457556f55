"""Writes the parsed copy of each spec in openapi/ (``m3ter.parsed.json``, ``admin.parsed.json``)
after a change to its YAML file; see ``read_spec`` in mockserver/resources.py for why.

    .venv/bin/python tools/parsed_specs.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mockserver.resources import write_parsed_copy  # noqa: E402

OPENAPI = Path(__file__).resolve().parent.parent / "openapi"

if __name__ == "__main__":
    for spec in sorted(OPENAPI.glob("*.yaml")):
        print(write_parsed_copy(spec).relative_to(OPENAPI.parent))
