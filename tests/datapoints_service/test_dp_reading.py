"""Reading: the filter grammar (every operator, and the 400s naming the parameter),
order, pages, `uri_format`, CSV with formulas neutralised."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.datapoints_service.dp_helpers import Person, create, csv_rows, ids, listing
from tests.datapoints_service.dp_world import World, make_world


@pytest.fixture
def world(app: Any) -> World:
    return make_world(app)


def _campaign(client: FlaskClient, staff: Person, world: World, slug: str, start: str) -> int:
    return create(
        client,
        staff.headers,
        "campaign",
        slug=slug,
        start_date=start,
        end_date="2016-12-31",
        office_id=world.office,
        campaign_type_id=world.campaign_type,
    )


def test_every_operator(client: FlaskClient, staff: Person, world: World) -> None:
    alpha = _campaign(client, staff, world, "alpha", "2015-01-01")
    beta = _campaign(client, staff, world, "beta", "2015-06-01")
    alphabet = _campaign(client, staff, world, "alphabet", "2016-01-01")
    ours = {alpha, beta, alphabet}  # (the world has campaigns of its own)

    def found(**params: Any) -> list[int]:
        return [row for row in ids(client, staff.headers, "campaign", **params) if row in ours]

    assert found(id=alpha) == [alpha]
    assert found(id__in=f"{alpha},{alphabet}") == [alpha, alphabet]
    assert found(id__gt=alpha) == [beta, alphabet]
    assert found(id__gte=beta) == [beta, alphabet]
    assert found(id__lt=beta) == [alpha]
    assert found(id__lte=beta) == [alpha, beta]
    assert found(start_date__lte="2015-06-01") == [alpha, beta]
    assert found(start_date__gte="2015-06-01") == [beta, alphabet]
    assert found(start_date="2015-06-01") == [beta]
    assert found(slug__startswith="alpha") == [alpha, alphabet]
    assert found(slug__starts_with="alpha") == [alpha, alphabet]
    assert found(slug__contains="ph") == [alpha, alphabet]
    assert found(slug__contains="PH") == []  # case-sensitive, as the document's Django
    assert found(slug__in="alpha,beta") == [alpha, beta]
    assert found(slug="beta") == [beta]
    assert found(office=world.office, campaign_type_id=world.campaign_type) == [
        alpha,
        beta,
        alphabet,
    ]
    assert found(office=world.office + 1000) == []
    assert found(created_at__gte="2000-01-01T00:00:00") == [alpha, beta, alphabet]
    assert found(created_at__lt="2000-01-01T00:00:00+05:30") == []
    roots = ids(client, staff.headers, "region", parent_region__isnull="true")
    assert roots == [world.region, world.region2]
    assert ids(client, staff.headers, "region", parent_region__isnull="false") == []
    assert ids(client, staff.headers, "indicator", is_reported="1") == [
        world.indicator,
        world.indicator2,
    ]
    assert ids(client, staff.headers, "indicator", is_reported="false") == []
    # The document's own examples: filters on a reference by its name without `_id`.
    assert listing(client, staff.headers, "group_permission", indicator=21)["objects"] == []


@pytest.mark.parametrize(
    ("resource", "query", "named"),
    [
        ("campaign", "foo=1", "foo"),
        ("campaign", "id__in=1,x", "id__in"),
        ("campaign", "start_date__lte=2015-13-01", "start_date__lte"),
        ("campaign", "start_date=2015-1-1", "start_date"),
        ("campaign", "slug__gt=a", "slug__gt"),
        ("campaign", "id__contains=1", "id__contains"),
        ("campaign", "slug__isnull=true", "slug__isnull"),
        ("campaign", "slug__icontains=a", "slug__icontains"),
        ("campaign", "office__name=x", "office__name"),
        ("indicator", "bound_json=x", "bound_json"),
        ("indicator", "is_reported=maybe", "is_reported"),
        ("region", "latitude__gt=nan", "latitude__gt"),
        ("region", "parent_region__isnull=perhaps", "parent_region__isnull"),
        ("custom_dashboard", "owned_by_current_user=1", "owned_by_current_user"),
        ("campaign", "limit=0", "limit"),
        ("campaign", "limit=x", "limit"),
        ("campaign", "offset=-1", "offset"),
        ("campaign", "format=xml", "format"),
        ("campaign", "order_by=password", "order_by"),
        ("indicator", "order_by=-bound_json", "order_by"),
        ("campaign", "uri_format=full", "uri_format"),
        ("region", "depth_level=-1", "depth_level"),
        ("region", "read_write=x", "read_write"),
        ("document", "show_all=maybe", "show_all"),
        ("campaign", "id=1&id=2", "id"),
        ("office", "id=99999999999", "id"),
        ("office", "id__in=1,-2147483649", "id__in"),
        ("office", "name=a%00b", "name"),
    ],
)
def test_refused_parameters(
    client: FlaskClient, staff: Person, resource: str, query: str, named: str
) -> None:
    for path in (f"/api/v2/{resource}/?{query}", f"/api/v2/{resource}/1?{query}"):
        response = client.get(path, headers=staff.headers)
        assert response.status_code == 400, (path, response.get_json())
        body = response.get_json()
        assert body["code"] == "invalid_parameters"
        assert list(body["errors"]) == [named]


def test_pages_and_order(client: FlaskClient, staff: Person) -> None:
    made = [create(client, staff.headers, "office", name=f"office {n:02d}") for n in range(25)]
    first = listing(client, staff.headers, "office")
    assert first["meta"] == {
        "limit": 20,
        "offset": 0,
        "total_count": 25,
        "parameters_requested": {},
    }
    assert [row["id"] for row in first["objects"]] == made[:20]
    last = listing(client, staff.headers, "office", limit=10, offset=20)
    assert [row["id"] for row in last["objects"]] == made[20:]
    assert last["meta"]["parameters_requested"] == {"limit": "10", "offset": "20"}
    assert listing(client, staff.headers, "office", offset=100)["objects"] == []
    assert listing(client, staff.headers, "office", offset=100)["meta"]["total_count"] == 25
    capped = listing(client, staff.headers, "office", limit=5000)
    assert capped["meta"]["limit"] == 1000 and len(capped["objects"]) == 25
    assert ids(client, staff.headers, "office", order_by="-name") == made[::-1]
    assert ids(client, staff.headers, "office", order_by="-id", limit=3) == made[::-1][:3]
    assert ids(client, staff.headers, "office", order_by="name,-id") == made


def test_uri_format(client: FlaskClient, staff: Person, world: World) -> None:
    child = create(
        client,
        staff.headers,
        "region",
        name="Kano",
        region_code="NG-KN",
        office_id=world.office,
        region_type_id=world.region_type,
        parent_region_id=world.region,
    )

    def shown(uri_format: str) -> dict[str, Any]:
        found = listing(client, staff.headers, "region", id=child, uri_format=uri_format)
        row: dict[str, Any] = found["objects"][0]
        return {key: row[key] for key in ("office", "parent_region", "region_type")}

    assert shown("id") == {
        "office": world.office,
        "parent_region": world.region,
        "region_type": world.region_type,
    }
    assert shown("name") == {
        "office": "world office",
        "parent_region": "world-region",
        "region_type": "world type",
    }
    # Offices and region types have no slug: their name stands for it.
    assert shown("slug") == {
        "office": "world office",
        "parent_region": "world-region",
        "region_type": "world type",
    }
    assert shown("uri") == {
        "office": f"/api/v2/office/{world.office}/",
        "parent_region": f"/api/v2/region/{world.region}/",
        "region_type": f"/api/v2/region_type/{world.region_type}/",
    }
    row = listing(client, staff.headers, "region", id=child)["objects"][0]
    assert row["slug"] == "ng-kn" and row["resource_uri"] == f"/api/v2/region/{child}/"
    by_name = csv_rows(client, staff.headers, "/api/v2/region", id=child, uri_format="name")
    assert by_name[0]["parent_region"] == "world-region"


def test_csv_neutralises_formulas(client: FlaskClient, staff: Person) -> None:
    names = ["=HYPERLINK(1)", "+1", "-2", "@SUM(A1)", "\tx", "plain, with comma"]
    made = [create(client, staff.headers, "office", name=name) for name in names]
    rows = csv_rows(client, staff.headers, "/api/v2/office/")
    assert [row["id"] for row in rows] == [str(office_id) for office_id in made]
    assert [row["name"] for row in rows] == [
        "'=HYPERLINK(1)",
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "plain, with comma",
    ]
    assert list(rows[0]) == ["id", "name", "created_at", "resource_uri"]
    shown = [row["name"] for row in listing(client, staff.headers, "office")["objects"]]
    assert shown == names  # JSON shows values as they are
    assert len(csv_rows(client, staff.headers, "/api/v2/office", limit=2, offset=1)) == 2
    with client.get("/api/v2/office/?format=csv", headers=staff.headers) as response:
        assert response.is_streamed  # written as rows come, never held whole
        assert response.headers["Content-Disposition"] == 'attachment; filename="office.csv"'


def test_unknown_resources(client: FlaskClient, staff: Person) -> None:
    for path in ("/api/v2/nothing/", "/api/v2/source_region/", "/api/v2/office/x"):
        assert client.get(path, headers=staff.headers).status_code == 404
    assert client.post("/api/v2/source_region", json={}, headers=staff.headers).status_code == 404


def test_values_the_database_cannot_hold(client: FlaskClient, staff: Person, world: World) -> None:
    for body, named in (
        ({"name": "a\x00b"}, "name"),
        ({"name": "x", "region_code": "x", "office_id": 2**31}, "office_id"),
        ({"name": "x", "region_code": "x", "source_id": "99999999999"}, "source_id"),
        ({"name": "x", "region_code": "x", "latitude": "inf"}, "latitude"),
    ):
        resource = "office" if list(body) == ["name"] else "region"
        response = client.post(f"/api/v2/{resource}/", json=body, headers=staff.headers)
        assert response.status_code == 400, body
        assert named in response.get_json()["errors"]
    for method in ("GET", "PUT", "DELETE"):
        far = client.open(
            "/api/v2/office/99999999999", method=method, json={}, headers=staff.headers
        )
        assert far.status_code == 404
    form = client.post("/api/v2/office", json={"id": 2**40, "name": "x"}, headers=staff.headers)
    assert form.status_code == 400
