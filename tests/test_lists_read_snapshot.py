"""A person's lists and their members are read in one snapshot: GraphQL's
`lists { members }` read each list's members apart from the lists, so a
list deleted between the two reads made its members NOT_FOUND and the whole
`lists` an error (the web client's Lists query, while an owner deletes
shared lists), or showed a list with no members, not even its owner."""

from __future__ import annotations

import threading

from tests.helpers import Server
from tests.test_lists import CREATE_LIST, SHARE, Caller

LISTS = "{ lists { id isDefault members { person { username } role } } }"
ONE = "query($id: ID!) { list(id: $id) { id members { person { username } } } }"
DROP_LIST = "mutation($id: ID!) { deleteList(id: $id) { id } }"
SHARED = 40


def test_lists_read_while_their_owner_deletes_them_are_whole_or_absent(accounts: Server) -> None:
    ann, bob = Caller(accounts, "ann"), Caller(accounts, "bob")
    shared = [ann.data(CREATE_LIST, name=f"l{i}")["createList"]["id"] for i in range(SHARED)]
    for key in shared:
        ann.data(SHARE, id=key, u="bob", r="VIEWER")
    deleting = threading.Thread(target=lambda: [ann.data(DROP_LIST, id=key) for key in shared])
    deleting.start()
    reads, problems = 0, []
    while True:
        reads += 1
        done = not deleting.is_alive()
        body = bob.gql(LISTS)
        one = bob.gql(ONE, id=shared[-1])
        for answer in (body, one):
            if "errors" in answer:
                problems.append(answer["errors"])
        seen = [item for item in (body.get("data") or {}).get("lists") or [] if not item["isDefault"]]
        problems += [item for item in seen if {m["person"]["username"] for m in item["members"]} != {"ann", "bob"}]
        found = (one.get("data") or {}).get("list")
        if found is not None and {m["person"]["username"] for m in found["members"]} != {"ann", "bob"}:
            problems.append(found)
        if done:
            break
    deleting.join()
    assert problems == [], (reads, problems[:3])
    assert seen == [] and found is None


def test_a_deleted_list_is_answered_with_the_members_it_had(accounts: Server) -> None:
    """deleteList's answer is the list as it was: its members too (read after
    the deletion, they were NOT_FOUND)."""
    ann, _ = Caller(accounts, "ann"), Caller(accounts, "bob")
    key = ann.data(CREATE_LIST, name="gone")["createList"]["id"]
    ann.data(SHARE, id=key, u="bob", r="EDITOR")
    deleted = ann.data("mutation($id: ID!) { deleteList(id: $id) { id members { person { username } role } } }", id=key)
    assert deleted["deleteList"] == {"id": key, "members": [
        {"person": {"username": "ann"}, "role": "OWNER"}, {"person": {"username": "bob"}, "role": "EDITOR"},
    ]}
    assert ann.gql(ONE, id=key)["data"] == {"list": None}
