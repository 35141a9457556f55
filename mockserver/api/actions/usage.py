"""HTTP handler of the usage query; the rules are in ``mockserver.backend.usage_engine`` and
``mockserver.domain.usage_query``."""

from __future__ import annotations

from ..context import backend, caller


def post_usage_data_query(orgId, user, body):
    return backend().usage_engine.query(caller(orgId, user), body)


HANDLERS = {
    "PostUsageDataQuery": post_usage_data_query,
}
