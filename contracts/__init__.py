"""The contract suite: Schemathesis over ``openapi/m3ter.yaml`` against the mock in-process,
the mock over HTTP, or any m3ter-compatible base URL. See ``contracts/README.md``."""
