"""The one download-grant service (``backend.downloads``) behind every /_mock/downloads URL:
issue, resolve, expiry, the cap in all, and Backend.download serving each grant's owner."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from mockserver.backend.core import Backend
from mockserver.domain.clock import Clock
from mockserver.domain.errors import MockError
from mockserver.settings import Settings

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
BASE = "http://mock.test:9000/"
PREFIX = "http://mock.test:9000/_mock/downloads/"


@pytest.fixture(scope="module")
def shared_backend():
    return Backend(clock=Clock(frozen_at=START), settings=Settings(retain_download_grants=3))


@pytest.fixture
def backend(shared_backend):
    shared_backend.store.reset()
    shared_backend.clock.reset()  # the one way back to START for the next test
    shared_backend.clock.freeze(START)
    return shared_backend


def token_of(url: str) -> str:
    assert url.startswith(PREFIX)
    return url[len(PREFIX):]


def test_an_issued_url_resolves_to_its_grant_until_it_expires(backend):
    url, expires = backend.downloads.issue("org-1", "billing", {"itemId": "x"}, timedelta(minutes=15), BASE)
    token = token_of(url)
    assert len(token) >= 40 and expires == START + timedelta(minutes=15)
    grant = backend.downloads.resolve(token)
    assert (grant.org_id, grant.owner, grant.ref, grant.expires) == ("org-1", "billing", {"itemId": "x"}, expires)
    backend.clock.set(START + timedelta(minutes=15) - timedelta(seconds=1))
    assert backend.downloads.resolve(token) is not None
    backend.clock.set(START + timedelta(minutes=15))
    assert backend.downloads.resolve(token) is None
    assert backend.downloads.resolve("not-a-token") is None


def test_each_url_gets_a_new_token(backend):
    urls = {backend.downloads.issue("org-1", "exports", "job", timedelta(minutes=15), BASE).url for _ in range(3)}
    assert len(urls) == 3


@pytest.mark.parametrize("lifetime, said", [(timedelta(minutes=15), "15 minutes"), (timedelta(hours=1), "one hour")])
def test_an_expired_url_is_a_403_naming_how_long_urls_last(backend, lifetime, said):
    token = token_of(backend.downloads.issue("org-1", "exports", "job", lifetime, BASE).url)
    backend.clock.set(START + lifetime)
    with pytest.raises(MockError) as refused:
        backend.downloads.open(token)
    assert refused.value.status == 403
    assert refused.value.message == f"this download URL has expired (they last {said}); ask for a new one"


def test_an_unknown_url_is_a_403(backend):
    with pytest.raises(MockError) as refused:
        backend.download("no-such-token")
    assert refused.value.status == 403
    assert refused.value.message == "this download URL is not valid or has expired; ask for a new one"


def test_the_cap_counts_the_grants_of_every_service_together(backend):
    urls = [backend.downloads.issue("org-1", owner, "ref", timedelta(hours=1), BASE).url
            for owner in ("exports", "billing", "lookupdata", "billing")]
    assert backend.downloads.kept() == 3  # retain_download_grants=3, in all
    assert [backend.downloads.resolve(token_of(u)) is not None for u in urls] == [False, True, True, True]


def test_issuing_forgets_the_grants_that_expired(backend):
    for _ in range(2):
        backend.downloads.issue("org-1", "exports", "job", timedelta(minutes=15), BASE)
    backend.clock.set(START + timedelta(minutes=15))
    backend.downloads.issue("org-1", "exports", "job", timedelta(minutes=15), BASE)
    assert backend.downloads.kept() == 1


def test_backend_download_serves_the_file_of_the_grants_owner(backend):
    backend.store.collection("org-1", "billcsvfiles").put(
        {"id": "file-1", "name": "bills_standard.csv", "content": b"a,b\n", "mediaType": "text/csv"})
    url = backend.downloads.issue("org-1", "billing", {"collection": "billcsvfiles", "itemId": "file-1"},
                                  timedelta(minutes=15), BASE).url
    assert backend.download(token_of(url)) == ("bills_standard.csv", b"a,b\n", "text/csv")
    # The same reference under the export service is read as an export job id: that job does not exist.
    other = backend.downloads.issue("org-1", "exports", "file-1", timedelta(minutes=15), BASE).url
    with pytest.raises(MockError) as refused:
        backend.download(token_of(other))
    assert refused.value.status == 403
    assert refused.value.message == "the export job of this download URL no longer exists"


def test_tokens_stay_out_of_the_log(backend, caplog):
    caplog.set_level(logging.DEBUG)
    url = backend.downloads.issue("org-1", "exports", "job", timedelta(minutes=15), BASE).url
    backend.downloads.resolve(token_of(url))
    backend.clock.set(START + timedelta(hours=1))
    with pytest.raises(MockError):
        backend.download(token_of(url))
    assert token_of(url) not in caplog.text
