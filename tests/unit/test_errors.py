"""The one error type: its status and its message, as the web layer reads them."""

from __future__ import annotations

import pytest

from mockserver.domain.errors import MockError


@pytest.mark.parametrize(("make", "status"), [
    (MockError.bad_request, 400), (MockError.not_found, 404), (MockError.conflict, 409),
    (MockError.not_implemented, 501),
])
def test_each_kind_carries_its_status_and_the_message(make, status):
    error = make("name: is required")
    assert (error.status, error.message, str(error)) == (status, "name: is required", "name: is required")


def test_the_repr_shows_status_and_message():
    assert repr(MockError(409, "code: taken")) == "MockError(409, 'code: taken')"
