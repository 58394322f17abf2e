"""The region tree: moves keep the closure current, cycles are refused, and every
listing a user gets equals the brute-force answer over their grants."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from datapoints_service.models import RegionPermission, db
from servicekit.testing import TestKeys
from tests.datapoints_service.dp_helpers import (
    Person,
    add_person,
    create,
    csv_rows,
    ids,
    listing,
    region_tree,
)

TREE_SIZE = 300
USERS = 6


def _grant(client: FlaskClient, staff: Person, user: Person, region: int, rw: str = "r") -> None:
    create(
        client,
        staff.headers,
        "region_permission",
        user_id=user.user_id,
        region_id=region,
        read_write=rw,
    )


def test_moves_and_cycles(client: FlaskClient, app: Flask, staff: Person, alice: Person) -> None:
    # a -> b -> c, and d: b (with c) moves under d.
    a, b, c, d = region_tree(app, [None, 0, 1, None])
    _grant(client, staff, alice, d)
    assert ids(client, alice.headers, "region") == [d]
    moved = client.put(f"/api/v2/region/{b}", json={"parent_region_id": d}, headers=staff.headers)
    assert moved.status_code == 200, moved.get_json()
    assert ids(client, alice.headers, "region") == [b, c, d]
    assert ids(client, alice.headers, "region", depth_level=1) == [b, d]
    for parent in (b, c):
        refused = client.put(
            f"/api/v2/region/{d}", json={"parent_region_id": parent}, headers=staff.headers
        )
        assert refused.status_code == 400
        assert list(refused.get_json()["errors"]) == ["parent_region_id"]
    itself = client.post(
        "/api/v2/region", json={"id": d, "parent_region_id": d}, headers=staff.headers
    )
    assert itself.status_code == 400
    # back to the root: alice keeps d only
    loose = client.put(
        f"/api/v2/region/{b}", json={"parent_region_id": None}, headers=staff.headers
    )
    assert loose.status_code == 200
    assert ids(client, alice.headers, "region") == [d]
    _grant(client, staff, alice, a)
    assert ids(client, alice.headers, "region") == [a, d]
    referred = client.delete(f"/api/v2/region/{b}", headers=staff.headers)
    assert referred.status_code == 409
    assert referred.get_json()["referred_by"] == ["region.parent_region_id"]
    assert client.delete(f"/api/v2/region/{c}", headers=staff.headers).status_code == 204
    assert client.delete(f"/api/v2/region/{b}", headers=staff.headers).status_code == 204
    granted = client.delete(f"/api/v2/region/{d}", headers=staff.headers)
    assert granted.status_code == 409
    assert granted.get_json()["referred_by"] == ["region_permission.region_id"]


def _brute_force(
    parents: dict[int, int | None], grants: list[tuple[int, str]], rw: str, depth: int
) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for region, parent in parents.items():
        if parent is not None:
            children[parent].append(region)
    seen: set[int] = set()
    for region, granted in grants:
        if rw == "w" and granted != "w":
            continue
        level, frontier = 0, [region]
        while frontier and (depth == 0 or level <= depth):
            seen.update(frontier)
            frontier = [child for node in frontier for child in children[node]]
            level += 1
    return sorted(seen)


def test_permission_matrix(
    client: FlaskClient, app: Flask, test_keys: TestKeys, staff: Person
) -> None:
    chance = random.Random(20151)
    shape: list[int | None] = [None]
    for index in range(1, TREE_SIZE):
        shape.append(None if chance.random() < 0.02 else chance.randrange(index))
    made = region_tree(app, shape)
    parents = {made[i]: (None if p is None else made[p]) for i, p in enumerate(shape)}
    users: list[tuple[Person, list[tuple[int, str]]]] = []
    with app.app_context():
        for number in range(USERS):
            person = add_person(app, test_keys, f"user{number}")
            grants = {
                (chance.choice(made), chance.choice("rw")) for _ in range(chance.randrange(4))
            }
            db.session.add_all(
                RegionPermission(user_id=person.user_id, region_id=region, read_write=rw)
                for region, rw in grants
            )
            users.append((person, sorted(grants)))
        db.session.commit()
    forbidden_probe = ",".join(str(region) for region in made[::7])
    for person, grants in users:
        for rw in ("r", "w"):
            for depth in (0, 1, 2):
                expected = _brute_force(parents, grants, rw, depth)
                params: dict[str, Any] = {"read_write": rw, "depth_level": depth}
                found = listing(client, person.headers, "region", limit=1000, **params)
                assert [row["id"] for row in found["objects"]] == expected, (grants, rw, depth)
                assert found["meta"]["total_count"] == len(expected)
                probe = ids(client, person.headers, "region", id__in=forbidden_probe, **params)
                assert probe == [region for region in made[::7] if region in expected]
        everything = _brute_force(parents, grants, "r", 0)
        paged = ids(client, person.headers, "region", limit=7, offset=3, order_by="-name")
        by_name = sorted(
            everything, key=lambda region: f"region {made.index(region)}", reverse=True
        )
        assert paged == by_name[3:10]
        shown = [int(row["id"]) for row in csv_rows(client, person.headers, "/api/v2/region")]
        assert shown == everything
        for region in made[::29]:
            one = client.get(f"/api/v2/region/{region}", headers=person.headers)
            assert one.status_code == (200 if region in everything else 404)
    assert ids(client, staff.headers, "region") == made[:1000]
