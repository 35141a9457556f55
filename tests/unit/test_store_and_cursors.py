import pytest

from mockserver.backend.store import Store
from mockserver.domain.errors import MockError
from mockserver.domain.pagination import Cursors, ListScope


def test_collection_keeps_creation_order_and_codes():
    store = Store()
    items = store.collection("org", "things")
    for n in range(5):
        items.put({"id": f"id{n}", "code": f"c{n}"})
    items.put({"id": "id2", "code": "renamed"})  # replace keeps the place
    assert [i["id"] for i in items.values()] == ["id0", "id1", "id2", "id3", "id4"]
    assert items.id_for_code("renamed") == "id2" and items.id_for_code("c2") is None
    items.remove("id1")
    assert [seq for seq, _ in items.scan(after=0)] == [2, 3, 4]
    assert [i["id"] for _, i in items.scan(after=3, newest_first=True)] == ["id2", "id0"]
    assert items.id_for_code("c1") is None


def test_reading_an_unknown_org_does_not_create_it():
    store = Store()
    assert len(store.peek("nobody", "things")) == 0
    assert store.org_ids() == []


def test_snapshot_and_restore():
    store = Store()
    store.collection("org", "things").put({"id": "a", "code": "x"})
    snapshot = store.snapshot()
    store.collection("org", "things").put({"id": "b"})
    store.collection("org", "things").get("a")["code"] = "mutated"
    store.restore(snapshot)
    things = store.peek("org", "things")
    assert [i["id"] for i in things.values()] == ["a"] and things.get("a")["code"] == "x"
    store.collection("org", "things").put({"id": "c"})
    assert store.snapshot()["org"].collections["things"].items.keys() != snapshot["org"].collections["things"].items.keys()


SCOPE = ListScope("org", "things", {"codes": ["a"]})


def test_cursor_round_trip():
    cursors = Cursors(b"k" * 32)
    assert cursors.decode(SCOPE, cursors.encode(SCOPE, 41)) == 41


@pytest.mark.parametrize("other", [
    ListScope("org2", "things", {"codes": ["a"]}),
    ListScope("org", "others", {"codes": ["a"]}),
    ListScope("org", "things", {"codes": ["b"]}),
])
def test_cursor_is_bound_to_its_list(other):
    cursors = Cursors(b"k" * 32)
    with pytest.raises(MockError) as raised:
        cursors.decode(other, cursors.encode(SCOPE, 3))
    assert raised.value.status == 400 and "nextToken" in raised.value.message


@pytest.mark.parametrize("token", ["", "abc", "a.b", "e30.AAAA", "eyJwIjoiMSJ9.xx", "a.b.c"])
def test_garbage_cursors_are_400(token):
    with pytest.raises(MockError) as raised:
        Cursors(b"k" * 32).decode(SCOPE, token)
    assert raised.value.status == 400


def test_cursor_from_another_mock_is_rejected():
    assert Cursors(b"a" * 32).encode(SCOPE, 1) != Cursors(b"b" * 32).encode(SCOPE, 1)
    with pytest.raises(MockError):
        Cursors(b"b" * 32).decode(SCOPE, Cursors(b"a" * 32).encode(SCOPE, 1))
