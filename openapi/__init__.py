"""The OpenAPI documents the mock serves. Installed as the package ``mockserver.openapi``
(see pyproject.toml); this file exists so that an editable install can import that package
from here, where the specs stay in the source tree."""
