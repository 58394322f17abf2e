"""Rendering pinned to the byte: the CSV and JSON answers for a small world of rows
holding every awkward value (formula-leading text, commas, quotes, newlines, NULLs,
dates, floats, booleans, JSON, unicode), in every `uri_format`; and CSV streamed one
chunk per fetched batch."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from datapoints_service import tree
from datapoints_service.models import (
    Campaign,
    CampaignType,
    Indicator,
    Office,
    Region,
    RegionType,
    db,
)
from tests.datapoints_service.dp_helpers import Person

CREATED = datetime(2016, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)


@pytest.fixture
def world(app: Flask) -> None:
    """Rows with fixed ids and times, so every answer is known to the byte."""
    with app.app_context():
        office = Office(id=1, name="=cmd|' /C calc'!A0", created_at=CREATED)
        plain = Office(id=2, name='Kano, "north"\nsecond line é', created_at=CREATED)
        db.session.add_all(
            [office, plain, RegionType(id=1, name="-province"), CampaignType(id=1, name="@round")]
        )
        db.session.flush()
        _region(1, "Nigéria 🇳🇬", "+234", "ng", office=1, parent=None, where=(9.0819, 8.6753))
        _region(2, 'Kano, "KN"', "\tKN", "ng-kn", office=2, parent=1, where=(-0.1, None))
        db.session.add(
            Campaign(
                id=1,
                name="\rround 1",
                slug="round-1",
                start_date=date(2015, 1, 1),
                end_date=date(2016, 12, 31),
                office_id=1,
                campaign_type_id=1,
                created_at=CREATED,
            )
        )
        db.session.add_all(
            [
                Indicator(
                    id=1,
                    name='Missed, "children"',
                    short_name="-missed",
                    slug="missed",
                    description='line one\nline two, with "quotes"',
                    is_reported=True,
                    bound_json=[{"bound_name": "=bad", "mn_val": 0.2, "mx_val": None}],
                    tag_json=[],
                    created_at=CREATED,
                ),
                Indicator(
                    id=2,
                    name="ünreported",
                    short_name="u",
                    slug="unreported",
                    description="",
                    is_reported=False,
                    source_id=7,
                    bound_json=[],
                    tag_json=[3, 1],
                    created_at=CREATED,
                ),
            ]
        )
        db.session.commit()


def _region(
    region_id: int,
    name: str,
    code: str,
    slug: str,
    *,
    office: int,
    parent: int | None,
    where: tuple[float | None, float | None],
) -> None:
    db.session.add(
        Region(
            id=region_id,
            name=name,
            region_code=code,
            slug=slug,
            region_type_id=1,
            office_id=office,
            parent_region_id=parent,
            latitude=where[0],
            longitude=where[1],
            created_at=CREATED,
        )
    )
    db.session.flush()
    tree.add(db.session(), region_id, parent)


# The answers as the service wrote them before CSV and pages were rendered column by
# column: any change to a byte here is a change on the wire.

PINNED = {
    "/api/v2/office/?format=csv": (
        "id,name,created_at,resource_uri\r\n1,'=cmd|' /C calc'!A0,2016-0"
        '3-01T12:30:45.123+00:00,/api/v2/office/1/\r\n2,"Kano, ""north""'
        '\nsecond line é",2016-03-01T12:30:45.123+00:00,/api/v2/office/'
        "2/\r\n"
    ),
    "/api/v2/region/?format=csv": (
        "id,name,slug,latitude,longitude,region_code,region_type,shape"
        "_file_path,shape,office,parent_region,source_id,created_at,re"
        "source_uri\r\n1,Nigéria 🇳🇬,ng,9.0819,8.6753,'+234,1,,,1,,,2016-"
        '03-01T12:30:45.123+00:00,/api/v2/region/1/\r\n2,"Kano, ""KN""",'
        "ng-kn,-0.1,,'\tKN,1,,,2,1,,2016-03-01T12:30:45.123+00:00,/api/"
        "v2/region/2/\r\n"
    ),
    "/api/v2/region/?format=csv&uri_format=uri": (
        "id,name,slug,latitude,longitude,region_code,region_type,shape"
        "_file_path,shape,office,parent_region,source_id,created_at,re"
        "source_uri\r\n1,Nigéria 🇳🇬,ng,9.0819,8.6753,'+234,/api/v2/regio"
        "n_type/1/,,,/api/v2/office/1/,,,2016-03-01T12:30:45.123+00:00"
        ',/api/v2/region/1/\r\n2,"Kano, ""KN""",ng-kn,-0.1,,\'\tKN,/api/v2'
        "/region_type/1/,,,/api/v2/office/2/,/api/v2/region/1/,,2016-0"
        "3-01T12:30:45.123+00:00,/api/v2/region/2/\r\n"
    ),
    "/api/v2/region/?format=csv&uri_format=name": (
        "id,name,slug,latitude,longitude,region_code,region_type,shape"
        "_file_path,shape,office,parent_region,source_id,created_at,re"
        "source_uri\r\n1,Nigéria 🇳🇬,ng,9.0819,8.6753,'+234,'-province,,,"
        "'=cmd|' /C calc'!A0,,,2016-03-01T12:30:45.123+00:00,/api/v2/r"
        'egion/1/\r\n2,"Kano, ""KN""",ng-kn,-0.1,,\'\tKN,\'-province,,,"Kan'
        'o, ""north""\nsecond line é",Nigéria 🇳🇬,,2016-03-01T12:30:45.1'
        "23+00:00,/api/v2/region/2/\r\n"
    ),
    "/api/v2/region/?format=csv&uri_format=slug": (
        "id,name,slug,latitude,longitude,region_code,region_type,shape"
        "_file_path,shape,office,parent_region,source_id,created_at,re"
        "source_uri\r\n1,Nigéria 🇳🇬,ng,9.0819,8.6753,'+234,'-province,,,"
        "'=cmd|' /C calc'!A0,,,2016-03-01T12:30:45.123+00:00,/api/v2/r"
        'egion/1/\r\n2,"Kano, ""KN""",ng-kn,-0.1,,\'\tKN,\'-province,,,"Kan'
        'o, ""north""\nsecond line é",ng,,2016-03-01T12:30:45.123+00:00'
        ",/api/v2/region/2/\r\n"
    ),
    "/api/v2/campaign/?format=csv&uri_format=name": (
        "id,name,slug,start_date,end_date,office,campaign_type,created"
        '_at,resource_uri\r\n1,"\'\rround 1",round-1,2015-01-01,2016-12-31'
        ",'=cmd|' /C calc'!A0,'@round,2016-03-01T12:30:45.123+00:00,/a"
        "pi/v2/campaign/1/\r\n"
    ),
    "/api/v2/indicator/?format=csv": (
        "id,name,short_name,slug,description,is_reported,source_id,bou"
        'nd_json,tag_json,aggregation\r\n1,"Missed, ""children""",\'-miss'
        'ed,missed,"line one\nline two, with ""quotes""",True,,"[{""bou'
        'nd_name"":""=bad"",""mn_val"":0.2,""mx_val"":null}]",[],sum\r\n'
        '2,ünreported,u,unreported,,False,7,[],"[3,1]",sum\r\n'
    ),
    "/api/v2/office/": (
        '{"meta":{"limit":20,"offset":0,"total_count":2,"parameters_re'
        'quested":{}},"objects":[{"id":1,"name":"=cmd|\' /C calc\'!A0","'
        'created_at":"2016-03-01T12:30:45.123+00:00","resource_uri":"/'
        'api/v2/office/1/"},{"id":2,"name":"Kano, \\"north\\"\\nsecond li'
        'ne \\u00e9","created_at":"2016-03-01T12:30:45.123+00:00","reso'
        'urce_uri":"/api/v2/office/2/"}],"errors":{}}\n'
    ),
    "/api/v2/region/": (
        '{"meta":{"limit":20,"offset":0,"total_count":2,"parameters_re'
        'quested":{}},"objects":[{"id":1,"name":"Nig\\u00e9ria \\ud83c\\u'
        'ddf3\\ud83c\\uddec","slug":"ng","latitude":9.0819,"longitude":8'
        '.6753,"region_code":"+234","region_type":1,"shape_file_path":'
        'null,"shape":null,"office":1,"parent_region":null,"source_id"'
        ':null,"created_at":"2016-03-01T12:30:45.123+00:00","resource_'
        'uri":"/api/v2/region/1/"},{"id":2,"name":"Kano, \\"KN\\"","slug'
        '":"ng-kn","latitude":-0.1,"longitude":null,"region_code":"\\tK'
        'N","region_type":1,"shape_file_path":null,"shape":null,"offic'
        'e":2,"parent_region":1,"source_id":null,"created_at":"2016-03'
        '-01T12:30:45.123+00:00","resource_uri":"/api/v2/region/2/"}],'
        '"errors":{}}\n'
    ),
    "/api/v2/region/?uri_format=uri": (
        '{"meta":{"limit":20,"offset":0,"total_count":2,"parameters_re'
        'quested":{"uri_format":"uri"}},"objects":[{"id":1,"name":"Nig'
        '\\u00e9ria \\ud83c\\uddf3\\ud83c\\uddec","slug":"ng","latitude":9.'
        '0819,"longitude":8.6753,"region_code":"+234","region_type":"/'
        'api/v2/region_type/1/","shape_file_path":null,"shape":null,"o'
        'ffice":"/api/v2/office/1/","parent_region":null,"source_id":n'
        'ull,"created_at":"2016-03-01T12:30:45.123+00:00","resource_ur'
        'i":"/api/v2/region/1/"},{"id":2,"name":"Kano, \\"KN\\"","slug":'
        '"ng-kn","latitude":-0.1,"longitude":null,"region_code":"\\tKN"'
        ',"region_type":"/api/v2/region_type/1/","shape_file_path":nul'
        'l,"shape":null,"office":"/api/v2/office/2/","parent_region":"'
        '/api/v2/region/1/","source_id":null,"created_at":"2016-03-01T'
        '12:30:45.123+00:00","resource_uri":"/api/v2/region/2/"}],"err'
        'ors":{}}\n'
    ),
    "/api/v2/region/?uri_format=name": (
        '{"meta":{"limit":20,"offset":0,"total_count":2,"parameters_re'
        'quested":{"uri_format":"name"}},"objects":[{"id":1,"name":"Ni'
        'g\\u00e9ria \\ud83c\\uddf3\\ud83c\\uddec","slug":"ng","latitude":9'
        '.0819,"longitude":8.6753,"region_code":"+234","region_type":"'
        '-province","shape_file_path":null,"shape":null,"office":"=cmd'
        '|\' /C calc\'!A0","parent_region":null,"source_id":null,"create'
        'd_at":"2016-03-01T12:30:45.123+00:00","resource_uri":"/api/v2'
        '/region/1/"},{"id":2,"name":"Kano, \\"KN\\"","slug":"ng-kn","la'
        'titude":-0.1,"longitude":null,"region_code":"\\tKN","region_ty'
        'pe":"-province","shape_file_path":null,"shape":null,"office":'
        '"Kano, \\"north\\"\\nsecond line \\u00e9","parent_region":"Nig\\u0'
        '0e9ria \\ud83c\\uddf3\\ud83c\\uddec","source_id":null,"created_at'
        '":"2016-03-01T12:30:45.123+00:00","resource_uri":"/api/v2/reg'
        'ion/2/"}],"errors":{}}\n'
    ),
    "/api/v2/campaign/?uri_format=slug": (
        '{"meta":{"limit":20,"offset":0,"total_count":1,"parameters_re'
        'quested":{"uri_format":"slug"}},"objects":[{"id":1,"name":"\\r'
        'round 1","slug":"round-1","start_date":"2015-01-01","end_date'
        '":"2016-12-31","office":"=cmd|\' /C calc\'!A0","campaign_type":'
        '"@round","created_at":"2016-03-01T12:30:45.123+00:00","resour'
        'ce_uri":"/api/v2/campaign/1/"}],"errors":{}}\n'
    ),
    "/api/v2/indicator/": (
        '{"meta":{"limit":20,"offset":0,"total_count":2,"parameters_re'
        'quested":{}},"objects":[{"id":1,"name":"Missed, \\"children\\""'
        ',"short_name":"-missed","slug":"missed","description":"line o'
        'ne\\nline two, with \\"quotes\\"","is_reported":true,"source_id"'
        ':null,"bound_json":[{"bound_name":"=bad","mn_val":0.2,"mx_val'
        '":null}],"tag_json":[],"aggregation":"sum"},{"id":2,"name":"\\'
        'u00fcnreported","short_name":"u","slug":"unreported","descrip'
        'tion":"","is_reported":false,"source_id":7,"bound_json":[],"t'
        'ag_json":[3,1],"aggregation":"sum"}],"errors":{}}\n'
    ),
}


@pytest.mark.parametrize("path", list(PINNED))
def test_answers_are_pinned_to_the_byte(
    client: FlaskClient, staff: Person, world: None, path: str
) -> None:
    with client.get(path, headers=staff.headers) as response:
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_data() == PINNED[path].encode()


@pytest.mark.parametrize("app_config", [{"DATAPOINTS_CSV_BATCH_ROWS": 1}], indirect=True)
def test_csv_is_one_chunk_per_fetched_batch(
    client: FlaskClient, staff: Person, world: None
) -> None:
    path = "/api/v2/region/?format=csv"
    with client.get(path, headers=staff.headers) as response:
        assert response.is_streamed
        chunks = list(response.iter_encoded())  # as the WSGI server writes them
    assert len(chunks) == 3  # the header, then one chunk per batch of one row
    assert b"".join(chunks) == PINNED[path].encode()


@pytest.mark.parametrize("app_config", [{"DATAPOINTS_CSV_BATCH_ROWS": 1000}], indirect=True)
def test_csv_of_one_batch_is_two_chunks(client: FlaskClient, staff: Person, world: None) -> None:
    path = "/api/v2/indicator/?format=csv"
    with client.get(path, headers=staff.headers) as response:
        chunks = list(response.iter_encoded())
    assert [chunk.count(b"\r\n") for chunk in chunks] == [1, 2]
    assert b"".join(chunks) == PINNED[path].encode()
