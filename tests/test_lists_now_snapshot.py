"""A list is read with its members in one snapshot wherever it is answered
with them: the feed's `list` (the list as it stands now), REST's
`/api/lists/<id>/members/`, and the lists createList, renameList and
leaveList answer. Read apart, a list deleted between the list and its
members made the feed's `list` null with a NOT_FOUND, or a list with no
members; REST's members an empty 200."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx

from tests.helpers import Server
from tests.test_lists import CREATE, CREATE_LIST, PASSWORD, SHARE, Caller
from tests.test_lists_live import _messages, _token, _transport_ws
from tests.test_lists_read_snapshot import DROP_LIST

SHARED = 40
FEEDS = 8
FEED = """subscription($after: String) { feed(after: $after) {
    kind listId list { id members { person { username } role } }
} }"""
MEMBERS = "{ person { username } role }"
MADE = f"mutation($name: String!) {{ createList(input: {{name: $name}}) {{ id members {MEMBERS} }} }}"
RENAMED = f"mutation($id: ID!) {{ renameList(id: $id, name: \"r\") {{ id members {MEMBERS} }} }}"


def _shared_lists(ann: Caller) -> tuple[str, list[str]]:
    """SHARED lists of ann's, each shared with bob; the cursor before the shares."""
    made = [ann.gql(CREATE_LIST, name=f"l{i}") for i in range(SHARED)]
    for key in (body["data"]["createList"]["id"] for body in made):
        ann.data(SHARE, id=key, u="bob", r="VIEWER")
    return made[-1]["extensions"]["cursor"], [body["data"]["createList"]["id"] for body in made]


def _deleting(ann: Caller, keys: list[str]) -> threading.Thread:
    deleting = threading.Thread(target=lambda: [ann.data(DROP_LIST, id=key) for key in keys])
    deleting.start()
    return deleting


def _names(members: list[dict[str, Any]]) -> set[str]:
    return {member["person"]["username"] for member in members}


def test_the_feed_s_list_is_whole_or_null_while_its_owner_deletes_it(accounts: Server) -> None:
    ann, bob = Caller(accounts, "ann"), Caller(accounts, "bob")
    start, shared = _shared_lists(ann)
    secret, _ = _token(bob)
    deleting = _deleting(ann, shared)
    rounds, problems = 0, []
    with _transport_ws(accounts, secret) as ws:
        messages = _messages(ws)
        while True:
            rounds += 1
            done = not deleting.is_alive()
            # Bob's feeds from before the shares, side by side: each share
            # (MEMBER_ADDED) with the list as it stands now.
            events: dict[str, list[dict[str, Any]]] = {f"{rounds}.{i}": [] for i in range(FEEDS)}
            for key in events:
                ws.send(json.dumps({"id": key, "type": "subscribe", "payload": {
                    "query": FEED, "variables": {"after": start},
                }}))
            while any(len(seen) < SHARED for seen in events.values()):
                message = next(messages)
                if message.get("id") not in events or message["type"] == "complete":
                    continue
                assert message["type"] == "next", message
                if "errors" in message["payload"]:
                    problems.append(message["payload"])
                events[message["id"]].append(message["payload"]["data"]["feed"])
            for key, seen in events.items():
                ws.send(json.dumps({"id": key, "type": "complete"}))
                assert [event["kind"] for event in seen[:SHARED]] == ["MEMBER_ADDED"] * SHARED
                problems += [e["list"] for e in seen if e["list"] is not None and _names(e["list"]["members"]) != {"ann", "bob"}]
            if done:
                break
    deleting.join()
    assert problems == [], (rounds, problems[:3])
    assert [event["list"] for seen in events.values() for event in seen[:SHARED]] == [None] * SHARED * FEEDS


def _read_until_deleted(
    ann: Caller, bob: Caller, shared: list[str], path: str, whole: Callable[[Any], bool]
) -> None:
    """bob reads each of the lists at `path` again and again while ann deletes
    them (in the same order), until its 404: every answer before it whole."""
    deleting = _deleting(ann, shared)
    reads, problems = 0, []
    for key in shared:
        while True:
            reads += 1
            answer = bob.http.get(path.format(key))
            if answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND":
                break
            if answer.status_code != 200 or not whole(answer.json()):
                problems.append((answer.status_code, answer.text))
    deleting.join()
    assert problems == [], (reads, problems[:3])


def test_rest_members_are_the_list_s_or_a_404_while_its_owner_deletes_it(accounts: Server) -> None:
    ann, bob = Caller(accounts, "ann"), Caller(accounts, "bob")
    _, shared = _shared_lists(ann)
    _read_until_deleted(ann, bob, shared, "/api/lists/{}/members/", lambda members: _names(members) == {"ann", "bob"})


def test_rest_list_todos_are_the_list_s_or_a_404_while_its_owner_deletes_it(accounts: Server) -> None:
    """GET /api/lists/<id>/todos/ asked whether the list was the caller's,
    then read its todos: a list deleted between was 200 [], a list that never
    stood empty."""
    ann, bob = Caller(accounts, "ann"), Caller(accounts, "bob")
    _, shared = _shared_lists(ann)
    for key in shared:
        ann.data(CREATE, t="milk", l=key)
    _read_until_deleted(
        ann, bob, shared, "/api/lists/{}/todos/", lambda todos: [todo["title"] for todo in todos] == ["milk"]
    )


def test_a_list_left_is_answered_with_the_members_it_had(accounts: Server) -> None:
    """leaveList's answer is the list as it was (its members, read after the
    leaving, were NOT_FOUND: the caller no longer sees the list)."""
    ann, bob = Caller(accounts, "ann"), Caller(accounts, "bob")
    key = ann.data(CREATE_LIST, name="left")["createList"]["id"]
    ann.data(SHARE, id=key, u="bob", r="EDITOR")
    left = bob.gql(f"mutation($id: ID!) {{ leaveList(id: $id) {{ id members {MEMBERS} }} }}", id=key)
    assert left == {"data": {"leaveList": {"id": key, "members": [
        {"person": {"username": "ann"}, "role": "OWNER"}, {"person": {"username": "bob"}, "role": "EDITOR"},
    ]}}, "extensions": left.get("extensions")}


def test_a_list_made_or_renamed_is_answered_with_its_members_while_its_owner_deletes_it(accounts: Server) -> None:
    """createList's and renameList's members are read with the write: read
    after it, a deletion between made them NOT_FOUND (the mutation done,
    its answer an error at `members`)."""
    ann = Caller(accounts, "ann")
    deleter = httpx.Client(base_url=accounts.url, headers={"Origin": accounts.url}, timeout=10)
    signed_in = deleter.post("/api/auth/sign-in", json={"username": "ann", "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    stop, deleted = threading.Event(), []

    def delete_all() -> None:
        while not stop.is_set():
            for found in deleter.get("/api/lists/").json():
                if not found["is_default"] and deleter.delete(f"/api/lists/{found['id']}/").status_code == 204:
                    deleted.append(found["id"])

    deleting = threading.Thread(target=delete_all)
    deleting.start()
    owner, problems = [{"person": {"username": "ann"}, "role": "OWNER"}], []
    try:
        for i in range(SHARED):
            made = ann.gql(MADE, name=f"m{i}")
            if "errors" in made or made["data"]["createList"]["members"] != owner:
                problems.append(made)
                continue
            renamed = ann.gql(RENAMED, id=made["data"]["createList"]["id"])
            # Refused, the list gone before the rename: NOT_FOUND at renameList itself.
            if "errors" in renamed:
                problems += [] if [e["path"] for e in renamed["errors"]] == [["renameList"]] else [renamed]
            elif renamed["data"]["renameList"]["members"] != owner:
                problems.append(renamed)
    finally:
        stop.set()
        deleting.join()
        deleter.close()
    assert problems == [], (len(deleted), problems[:3])


ROLE = "mutation($l: ID!, $p: ID!) { setMemberRole(listId: $l, personId: $p, role: VIEWER) { person { username } role } }"
REMOVE = "mutation($l: ID!, $p: ID!) { removeMember(listId: $l, personId: $p) { person { username } role } }"


def _raced(ann: Caller, keys: list[str], write: Callable[[str], dict[str, Any]]) -> list[dict[str, Any]]:
    """Each list's deletion (by a second session of ann's) and `write` on
    it, started together; the writes' answers."""
    deleter = httpx.Client(base_url=str(ann.http.base_url), headers={"Origin": ann.http.headers["Origin"]}, timeout=10)
    signed_in = deleter.post("/api/auth/sign-in", json={"username": "ann", "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    together = threading.Barrier(2, timeout=30)

    def delete_each() -> None:
        for key in keys:
            together.wait()
            assert deleter.delete(f"/api/lists/{key}/").status_code == 204

    deleting = threading.Thread(target=delete_each)
    deleting.start()
    answers = []
    try:
        for key in keys:
            together.wait()
            answers.append(write(key))
    finally:
        deleting.join()
        deleter.close()
    return answers


def test_member_writes_raced_by_the_list_s_deletion_are_done_or_the_list_not_found(accounts: Server) -> None:
    """shareList's and setMemberRole's member is the one the write made, and
    removeMember's the one the list had with the list, read in one
    statement: read apart from the list or after the write, a list deleted
    meanwhile made a write done NOT_FOUND as no such member, and a removal
    whose list went FORBIDDEN (as if the owner's)."""
    ann, bob = Caller(accounts, "ann"), Caller(accounts, "bob")
    keys = [ann.data(CREATE_LIST, name=f"s{i}")["createList"]["id"] for i in range(SHARED)]
    shares = _raced(ann, keys, lambda key: ann.gql(SHARE, id=key, u="bob", r="EDITOR"))
    keys = [ann.data(CREATE_LIST, name=f"r{i}")["createList"]["id"] for i in range(SHARED)]
    for key in keys:
        ann.data(SHARE, id=key, u="bob", r="EDITOR")
    removals = _raced(ann, keys[: SHARED // 2], lambda key: ann.gql(REMOVE, l=key, p=bob.id))
    roles = _raced(ann, keys[SHARED // 2 :], lambda key: ann.gql(ROLE, l=key, p=bob.id))
    problems = [answer for answer in shares + removals + roles if "errors" in answer and answer["errors"] != [
        {**answer["errors"][0], "message": f"no list with id {answer['errors'][0]['message'].rsplit(' ', 1)[-1]}",
         "extensions": {"code": "NOT_FOUND"}},
    ]]
    problems += [answer for answer in shares if "errors" not in answer and answer["data"]["shareList"] != {
        "person": {"username": "bob"}, "role": "EDITOR"}]
    problems += [answer for answer in removals if "errors" not in answer and answer["data"]["removeMember"] != {
        "person": {"username": "bob"}, "role": "EDITOR"}]
    problems += [answer for answer in roles if "errors" not in answer and answer["data"]["setMemberRole"] != {
        "person": {"username": "bob"}, "role": "VIEWER"}]
    assert problems == [], problems[:3]
