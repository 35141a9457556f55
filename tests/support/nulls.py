"""Where a JSON value holds a null: the published schemas allow none in responses."""

from __future__ import annotations

from contextlib import contextmanager


def null_paths(value, where: str = "$") -> list[str]:
    """JSONPath-like places of every null in ``value`` (``$.data[0].dtActioned``)."""
    if value is None:
        return [where]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in null_paths(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in null_paths(item, f"{where}[{index}]")]
    return []


@contextmanager
def strict_sdk(live_url: str, org_id: str):
    """The official SDK with strict response validation, bound to a served mock, that fails
    the test on leaving when any JSON response held a null (which strict validation lets
    through for optional fields)."""
    import httpx
    import m3ter

    nulls: list[str] = []

    def no_nulls(response: httpx.Response) -> None:
        response.read()
        if response.headers.get("content-type", "").startswith("application/json") and response.content:
            nulls.extend(f"{response.request.method} {response.request.url.path}: {where}"
                         for where in null_paths(response.json(), "$"))

    http = httpx.Client(event_hooks={"response": [no_nulls]})
    with m3ter.M3ter(base_url=live_url, api_key="sdk-client", api_secret="sdk-secret", org_id=org_id,
                     http_client=http, max_retries=0, _strict_response_validation=True) as sdk:
        yield sdk
    assert nulls == []
