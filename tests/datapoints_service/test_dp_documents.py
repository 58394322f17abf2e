"""Documents end to end on a real RQ worker: uploads, processing into source datapoints
and review rows, maps merging waiting values, re-processing, deletion, refusals."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from datapoints_service.models import Document, db
from servicekit.config import REPO_ROOT
from servicekit.testing import TestKeys
from tests.datapoints_service.dp_documents import (
    document,
    grant_upload,
    review_rows,
    row_counts,
    run_worker,
    stored_values,
    upload,
    uploaded,
)
from tests.datapoints_service.dp_helpers import Person, create, ids, listing, stranger
from tests.datapoints_service.dp_world import World, make_world


@pytest.fixture
def world(app: Flask) -> World:
    return make_world(app)


@pytest.fixture
def uploader(app: Flask, alice: Person) -> Person:
    grant_upload(app, alice)
    return alice


LONG = (
    "Region,Campaign,Indicator,Value\n"
    "Kano,June 2015,missed children,10\n"
    "Kano,June 2015,vaccinated,200\n"
    "Kano,NG 2015,missed children,11\n"
    "Lagos,June 2015,missed children,7\n"
    "Kano,June 2015,missed children,12\n"  # the same cell again: the last line wins
)


def _map(client: FlaskClient, staff: Person, kind: str, source: int, master: int) -> int:
    return create(
        client, staff.headers, f"{kind}_map", source_object_id=source, master_object_id=master
    )


def test_upload_review_then_maps_merge_waiting_values(
    client: FlaskClient,
    app: Flask,
    redis_client: redis.Redis,
    uploader: Person,
    staff: Person,
    world: World,
) -> None:
    doc_id = uploaded(client, uploader.headers, LONG)
    queued = document(client, uploader.headers, doc_id)
    assert queued["status"] == "queued" and queued["is_processed"] is False
    assert queued["docfile"] == "data.csv" and queued["created_by_id"] == uploader.user_id
    assert queued["doc_text"] == LONG and len(queued["guid"]) == 32

    run_worker(app, redis_client)

    done = document(client, uploader.headers, doc_id)
    assert done["status"] == "processed" and done["is_processed"] is True
    assert (done["rows_total"], done["rows_done"], done["row_error_count"]) == (5, 5, 0)
    assert done["source_datapoint_count"] == 5 and done["master_datapoint_count"] == 0
    assert done["processed_at"] is not None and done["error"] is None
    reviews = review_rows(client, uploader.headers, doc_id)
    assert set(reviews) == {
        ("region", "Kano"),
        ("region", "Lagos"),
        ("campaign", "June 2015"),
        ("campaign", "NG 2015"),
        ("indicator", "missed children"),
        ("indicator", "vaccinated"),
    }
    assert reviews[("region", "Kano")]["source_dp_count"] == 4
    assert reviews[("campaign", "June 2015")]["source_dp_count"] == 4
    assert all(row["map_id"] is None and row["master_dp_count"] == 0 for row in reviews.values())
    assert stored_values(app) == {}

    kano = reviews[("region", "Kano")]["source_object_id"]
    june = reviews[("campaign", "June 2015")]["source_object_id"]
    ng = reviews[("campaign", "NG 2015")]["source_object_id"]
    missed = reviews[("indicator", "missed children")]["source_object_id"]
    region_map = _map(client, staff, "region", kano, world.region)
    _map(client, staff, "campaign", june, world.campaign)
    assert stored_values(app) == {}  # the indicator is not mapped yet
    _map(client, staff, "indicator", missed, world.indicator)

    assert stored_values(app) == {
        (world.region, world.campaign, world.indicator): (12.0, doc_id),
    }
    reviews = review_rows(client, uploader.headers, doc_id)
    assert reviews[("region", "Kano")]["map_id"] == region_map
    assert reviews[("region", "Kano")]["master_object_id"] == world.region
    assert reviews[("region", "Kano")]["master_dp_count"] == 2  # lines 2 and 6
    assert reviews[("indicator", "missed children")]["master_dp_count"] == 2
    assert reviews[("region", "Lagos")]["master_dp_count"] == 0
    assert reviews[("indicator", "vaccinated")]["map_id"] is None
    assert document(client, uploader.headers, doc_id)["master_datapoint_count"] == 1

    # A second campaign string mapped to another campaign brings line 4 in.
    _map(client, staff, "campaign", ng, world.campaign2)
    assert stored_values(app)[(world.region, world.campaign2, world.indicator)] == (11.0, doc_id)
    assert document(client, uploader.headers, doc_id)["master_datapoint_count"] == 2
    history = listing(client, staff.headers, "datapoint_history", document_id=doc_id)
    assert history["meta"]["total_count"] == 2


WIDE = (
    "\ufeffregion, campaign ,missed children,Vaccinated\n"
    "Kano,June 2015,3,\n"  # an empty cell is no value
    "\"=cmd|' /C calc'!A0\",June 2015,4,5\n"
    "\n"  # a blank line is not a row
    "Kano,June 2015,,9\n"
)


def test_wide_layout_from_doc_text_with_maps_in_place(
    client: FlaskClient,
    app: Flask,
    redis_client: redis.Redis,
    uploader: Person,
    staff: Person,
    world: World,
) -> None:
    response = client.post(
        "/api/v2/document",
        json={"doc_text": WIDE, "docfile": "C:\\exports\\wide.csv", "source_id": 7},
        headers=uploader.headers,
    )
    assert response.status_code == 201, response.get_json()
    first = response.get_json()["objects"]["new_id"]
    run_worker(app, redis_client)
    reviews = review_rows(client, uploader.headers, first)
    assert reviews[("region", "=cmd|' /C calc'!A0")]["source_dp_count"] == 2  # kept as text
    assert reviews[("indicator", "Vaccinated")]["source_dp_count"] == 2
    assert reviews[("indicator", "missed children")]["source_dp_count"] == 2
    for kind, string, master in (
        ("region", "Kano", world.region),
        ("campaign", "June 2015", world.campaign),
        ("indicator", "missed children", world.indicator),
        ("indicator", "Vaccinated", world.indicator2),
    ):
        _map(client, staff, kind, reviews[(kind, string)]["source_object_id"], master)
    assert stored_values(app) == {
        (world.region, world.campaign, world.indicator): (3.0, first),
        (world.region, world.campaign, world.indicator2): (9.0, first),
    }

    # The same strings in a later document: merged as it is processed.
    second = uploaded(client, uploader.headers, WIDE.replace(",3,", ",30,"))
    run_worker(app, redis_client)
    shown = document(client, uploader.headers, second)
    assert shown["docfile"] == "data.csv" and shown["rows_total"] == 3
    assert shown["source_datapoint_count"] == 4 and shown["master_datapoint_count"] == 2
    assert stored_values(app)[(world.region, world.campaign, world.indicator)] == (30.0, second)
    first_shown = document(client, uploader.headers, first)
    assert (first_shown["docfile"], first_shown["source_id"]) == ("wide.csv", 7)


def test_row_errors_name_their_lines_and_the_rest_is_processed(
    client: FlaskClient, app: Flask, redis_client: redis.Redis, uploader: Person
) -> None:
    text = (
        "region,campaign,indicator,value\n"
        "Kano,June,missed,1\n"
        "Kano,June,missed\n"
        ",June,missed,2\n"
        "Kano,,missed,3\n"
        "Kano,June,missed,lots\n"
        "Kano,June,missed,inf\n"
        "Kano,June,missed,1e999\n"
        "Kano,June,missed,1_000\n"
        "Kano,June,missed,\n"
        '"Kano\nNorth",June,missed,4\n'  # a quoted line break: one row over two lines
        f"{'x' * 256},June,missed,5\n"
        "Kano,June,missed,6,\n"  # a trailing comma is no extra cell
    )
    doc_id = uploaded(client, uploader.headers, text)
    run_worker(app, redis_client)
    shown = document(client, uploader.headers, doc_id)
    assert shown["status"] == "processed"
    assert (shown["rows_total"], shown["rows_done"], shown["row_error_count"]) == (12, 12, 9)
    assert shown["source_datapoint_count"] == 3
    assert [error["line"] for error in shown["row_errors"]] == [3, 4, 5, 6, 7, 8, 9, 10, 13]
    errors = {error["line"]: error["error"] for error in shown["row_errors"]}
    assert errors[3] == "expected 4 cells as in the header, found 3"
    assert errors[4] == "the region is empty"
    assert errors[5] == "the campaign is empty"
    assert errors[6] == "not a number: 'lots'"
    assert errors[7] == "not a finite number: 'inf'"
    assert errors[8] == "not a finite number: '1e999'"
    assert errors[9] == "not a number: '1_000'"
    assert errors[10] == "the value is empty"
    assert errors[13] == "the region is over 255 characters"
    assert ("region", "Kano\nNorth") in review_rows(client, uploader.headers, doc_id)


@pytest.mark.parametrize("app_config", [{"DATAPOINTS_DOCUMENT_CHUNK_ROWS": 7}], indirect=True)
def test_row_errors_listed_up_to_a_thousand_and_all_counted(
    client: FlaskClient, app: Flask, redis_client: redis.Redis, uploader: Person
) -> None:
    bad = "".join(f"Kano,June,missed,x{line}\n" for line in range(1005))
    doc_id = uploaded(client, uploader.headers, "region,campaign,indicator,value\n" + bad)
    run_worker(app, redis_client)
    shown = document(client, uploader.headers, doc_id)
    assert shown["status"] == "processed"
    assert shown["row_error_count"] == 1005 and len(shown["row_errors"]) == 1000
    assert shown["row_errors"][-1] == {"line": 1001, "error": "not a number: 'x999'"}
    assert (
        shown["source_datapoint_count"] == 0 and review_rows(client, uploader.headers, doc_id) == {}
    )


REFUSED = [
    (b"", 400, "the file is empty"),
    (b" \n\n", 400, "the file is empty"),
    (b"region,campaign,indicator,value\n\xff\xfeKano,June,x,1\n", 400, "not UTF-8"),
    (b"region,campaign,indicator,value\nKano\x00,June,x,1\n", 400, "NUL bytes"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 400, "NUL bytes"),
    (b"name,value\nKano,1\n", 400, "no recognisable header"),
    (b"region,campaign\nKano,June\n", 400, "no recognisable header"),
    (b"region,campaign,x,X\nKano,June,1,2\n", 400, "names a column twice"),
    (b"region,campaign,,x\nKano,June,1,2\n", 400, "a column without a name"),
    (b"region,campaign,indicator,value\n", 400, "a header but no rows"),
]


@pytest.mark.parametrize(("content", "status", "message"), REFUSED)
def test_unreadable_files_are_refused_at_the_door(
    client: FlaskClient,
    app: Flask,
    redis_client: redis.Redis,
    uploader: Person,
    content: bytes,
    status: int,
    message: str,
) -> None:
    response = upload(client, uploader.headers, content)
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["code"] == "invalid_document" and message in body["error"]
    assert row_counts(app)["documents"] == 0
    assert redis_client.llen("rq:queue:datapoints") == 0


@pytest.mark.parametrize("app_config", [{"DATAPOINTS_DOCUMENT_MAX_BYTES": 100}], indirect=True)
def test_files_over_the_limit_are_413(
    client: FlaskClient, app: Flask, redis_client: redis.Redis, uploader: Person
) -> None:
    text = "region,campaign,indicator,value\n" + "Kano,June,missed,1\n" * 4  # 108 bytes
    for response in (
        upload(client, uploader.headers, text),
        client.post("/api/v2/document/", json={"doc_text": text}, headers=uploader.headers),
    ):
        assert response.status_code == 413, response.get_json()
        assert response.get_json()["code"] == "payload_too_large"
    assert uploaded(client, uploader.headers, text[:100]) > 0  # at the limit: accepted
    huge = {"doc_text": "x" * 70_000}  # a body beyond any file's framing: refused unread
    response = client.post("/api/v2/document/", json=huge, headers=uploader.headers)
    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"


def test_bad_bodies_are_400(client: FlaskClient, app: Flask, uploader: Person) -> None:
    cases = [
        ({"docfile": "x.csv"}, {"docfile": "send a CSV file (docfile) or doc_text"}),
        ({"doc_text": 5}, {"doc_text": "the CSV text, as a string"}),
        ({"doc_text": LONG, "owner": 1}, {"owner": "unknown field"}),
        ({"doc_text": LONG, "source_id": "x"}, {"source_id": "not an id"}),
    ]
    for body, errors in cases:
        response = client.post("/api/v2/document/", json=body, headers=uploader.headers)
        assert response.status_code == 400, body
        assert response.get_json()["errors"] == errors
    assert client.post("/api/v2/document/", data="x", headers=uploader.headers).status_code == 415
    assert row_counts(app)["documents"] == 0


@pytest.mark.parametrize("app_config", [{"REDIS_URL": "redis://127.0.0.1:1/0"}], indirect=True)
def test_without_redis_an_upload_is_503_and_nothing_is_stored(
    client: FlaskClient, app: Flask, uploader: Person
) -> None:
    response = upload(client, uploader.headers, LONG)
    assert response.status_code == 503
    assert response.get_json()["code"] == "queue_unavailable"
    assert response.headers["Retry-After"] == "30"
    assert row_counts(app)["documents"] == 0


def test_who_may_upload_see_change_and_delete(
    client: FlaskClient,
    app: Flask,
    redis_client: redis.Redis,
    test_keys: TestKeys,
    uploader: Person,
    bob: Person,
    staff: Person,
    clerk: Person,
) -> None:
    refused = upload(client, bob.headers, LONG)
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "uploading documents needs the upload_csv permission"
    assert upload(client, stranger(test_keys), LONG).status_code == 403
    assert row_counts(app)["documents"] == 0
    mine = uploaded(client, uploader.headers, LONG)
    by_clerk = uploaded(client, clerk.headers, LONG)  # staff need no upload_csv
    grant_upload(app, bob)
    theirs = uploaded(client, bob.headers, LONG)
    run_worker(app, redis_client)

    assert ids(client, uploader.headers, "document") == [mine]
    assert ids(client, staff.headers, "document", show_all=1) == [mine, by_clerk, theirs]
    assert client.get("/api/v2/document/?show_all=1", headers=bob.headers).status_code == 403
    reviews = listing(client, bob.headers, "document_review", document_id=mine)
    assert reviews["meta"]["total_count"] == 0
    for response in (
        client.get(f"/api/v2/document/{mine}", headers=bob.headers),
        client.put(f"/api/v2/document/{mine}", json={}, headers=bob.headers),
        client.delete(f"/api/v2/document/{mine}", headers=bob.headers),
        client.put("/api/v2/document/99999999999", json={}, headers=bob.headers),
    ):
        assert response.status_code == 404
    answer = client.put(f"/api/v2/document/{mine}", json={}, headers=staff.headers)
    assert answer.status_code == 200
    assert answer.get_json()["objects"][0]["created_by_id"] == uploader.user_id
    assert client.delete(f"/api/v2/document/{theirs}", headers=staff.headers).status_code == 204


def test_reprocessing_is_idempotent_and_new_content_replaces_the_old(
    client: FlaskClient,
    app: Flask,
    redis_client: redis.Redis,
    uploader: Person,
    staff: Person,
    world: World,
) -> None:
    doc_id = uploaded(client, uploader.headers, LONG)
    run_worker(app, redis_client)
    before = review_rows(client, uploader.headers, doc_id)
    for kind, string, master in (
        ("region", "Kano", world.region),
        ("campaign", "June 2015", world.campaign),
        ("indicator", "missed children", world.indicator),
    ):
        _map(client, staff, kind, before[(kind, string)]["source_object_id"], master)
    values = stored_values(app)
    mapped = review_rows(client, uploader.headers, doc_id)

    answer = client.put(f"/api/v2/document/{doc_id}/", json={}, headers=uploader.headers)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["meta"]["total_count"] == 1 and body["errors"] == {}
    assert body["objects"][0]["status"] == "queued"
    run_worker(app, redis_client)

    again = review_rows(client, uploader.headers, doc_id)
    strip = {key: {k: v for k, v in row.items() if k != "id"} for key, row in mapped.items()}
    assert {key: {k: v for k, v in row.items() if k != "id"} for key, row in again.items()} == strip
    assert stored_values(app) == values
    shown = document(client, uploader.headers, doc_id)
    assert (shown["status"], shown["source_datapoint_count"], shown["master_datapoint_count"]) == (
        "processed",
        5,
        1,
    )
    history = listing(client, staff.headers, "datapoint_history", document_id=doc_id)
    assert history["meta"]["total_count"] == 1  # an equal value is not a change
    assert row_counts(app, doc_id)["source_datapoints"] == 5

    replaced = client.put(
        f"/api/v2/document/{doc_id}",
        data={
            "docfile": (
                io.BytesIO(b"region,campaign,indicator,value\nKano,June 2015,missed children,99\n"),
                "new.csv",
            )
        },
        headers=uploader.headers,
        content_type="multipart/form-data",
    )
    assert replaced.status_code == 200, replaced.get_json()
    assert replaced.get_json()["objects"][0]["docfile"] == "new.csv"
    run_worker(app, redis_client)
    assert stored_values(app) == {(world.region, world.campaign, world.indicator): (99.0, doc_id)}
    assert row_counts(app, doc_id)["source_datapoints"] == 1
    assert set(review_rows(client, uploader.headers, doc_id)) == {
        ("region", "Kano"),
        ("campaign", "June 2015"),
        ("indicator", "missed children"),
    }
    bad = client.put(
        f"/api/v2/document/{doc_id}", json={"doc_text": "a,b\n1,2\n"}, headers=uploader.headers
    )
    assert bad.status_code == 400
    assert document(client, uploader.headers, doc_id)["docfile"] == "new.csv"


def test_a_document_being_processed_is_not_changed_or_deleted(
    client: FlaskClient, app: Flask, uploader: Person
) -> None:
    doc_id = uploaded(client, uploader.headers, LONG)
    with app.app_context():
        db.session.execute(update(Document).values(status="processing"))
        db.session.commit()
    for response in (
        client.put(f"/api/v2/document/{doc_id}", json={}, headers=uploader.headers),
        client.delete(f"/api/v2/document/{doc_id}", headers=uploader.headers),
    ):
        assert response.status_code == 409
        assert response.get_json()["errors"] == {"status": "processing"}


def test_delete_removes_the_document_and_keeps_its_master_datapoints(
    client: FlaskClient,
    app: Flask,
    redis_client: redis.Redis,
    uploader: Person,
    staff: Person,
    world: World,
) -> None:
    doc_id = uploaded(client, uploader.headers, LONG)
    other = uploaded(client, uploader.headers, LONG.replace(",12\n", ",13\n"))
    run_worker(app, redis_client)
    reviews = review_rows(client, uploader.headers, doc_id)
    for kind, string, master in (
        ("region", "Kano", world.region),
        ("campaign", "June 2015", world.campaign),
        ("indicator", "missed children", world.indicator),
    ):
        _map(client, staff, kind, reviews[(kind, string)]["source_object_id"], master)
    assert stored_values(app) == {(world.region, world.campaign, world.indicator): (13.0, other)}

    assert client.delete(f"/api/v2/document/{other}", headers=uploader.headers).status_code == 204
    assert row_counts(app, other) == {
        "documents": 0,
        "files": 0,
        "source_datapoints": 0,
        "reviews": 0,
    }
    assert row_counts(app, doc_id)["source_datapoints"] == 5
    assert stored_values(app) == {(world.region, world.campaign, world.indicator): (13.0, None)}
    assert client.get(f"/api/v2/document/{other}", headers=uploader.headers).status_code == 404
    assert client.delete(f"/api/v2/document/{other}", headers=uploader.headers).status_code == 404


def test_deleting_a_map_shows_its_strings_unmapped_and_keeps_merged_values(
    client: FlaskClient,
    app: Flask,
    redis_client: redis.Redis,
    uploader: Person,
    staff: Person,
    world: World,
) -> None:
    doc_id = uploaded(client, uploader.headers, LONG)
    run_worker(app, redis_client)
    reviews = review_rows(client, uploader.headers, doc_id)
    made = {
        kind: _map(client, staff, kind, reviews[(kind, string)]["source_object_id"], master)
        for kind, string, master in (
            ("region", "Kano", world.region),
            ("campaign", "June 2015", world.campaign),
            ("indicator", "missed children", world.indicator),
        )
    }
    merged = stored_values(app)
    assert merged != {}
    response = client.delete(f"/api/v2/campaign_map/{made['campaign']}", headers=staff.headers)
    assert response.status_code == 204
    after = review_rows(client, uploader.headers, doc_id)
    assert after[("campaign", "June 2015")]["map_id"] is None
    assert after[("campaign", "June 2015")]["master_object_id"] is None
    assert after[("region", "Kano")]["master_dp_count"] == 0
    assert after[("region", "Kano")]["map_id"] == made["region"]
    assert document(client, uploader.headers, doc_id)["master_datapoint_count"] == 0
    assert stored_values(app) == merged

    # Remapped to another campaign: the waiting values go there.
    source = after[("campaign", "June 2015")]["source_object_id"]
    _map(client, staff, "campaign", source, world.campaign2)
    assert stored_values(app)[(world.region, world.campaign2, world.indicator)] == (12.0, doc_id)


def test_a_map_needs_an_existing_source_object(
    client: FlaskClient, app: Flask, staff: Person, world: World
) -> None:
    response = client.post(
        "/api/v2/region_map/",
        json={"source_object_id": 987654, "master_object_id": world.region},
        headers=staff.headers,
    )
    assert response.status_code == 400
    assert response.get_json()["errors"] == {"source_object_id": "no source_region 987654"}


@pytest.mark.parametrize("app_config", [{"DATAPOINTS_DOCUMENT_CHUNK_ROWS": 2}], indirect=True)
def test_a_file_failing_on_the_worker_leaves_nothing_half_written(
    client: FlaskClient, app: Flask, redis_client: redis.Redis, uploader: Person
) -> None:
    rows = "".join(f"Kano,June,missed,{n}\n" for n in range(6))
    too_long_cell = '"' + "x" * 200_000 + '"'  # beyond the CSV reader's field limit
    text = "region,campaign,indicator,value\n" + rows + f"Kano,June,{too_long_cell},1\n"
    doc_id = uploaded(client, uploader.headers, text)
    run_worker(app, redis_client)
    shown = document(client, uploader.headers, doc_id)
    assert shown["status"] == "failed" and shown["is_processed"] is False
    assert shown["error"].startswith("line 8: the CSV cannot be read")
    assert shown["source_datapoint_count"] == 0
    assert row_counts(app, doc_id)["source_datapoints"] == 0
    assert row_counts(app, doc_id)["reviews"] == 0


def test_a_real_rq_worker_process_builds_its_app_from_the_environment(
    client: FlaskClient,
    app: Flask,
    redis_url: str,
    redis_client: redis.Redis,
    uploader: Person,
    tmp_path: Path,
) -> None:
    doc_id = uploaded(client, uploader.headers, LONG)
    environment = {
        **os.environ,
        "DATAPOINTS_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_url,
        "FLOTILLA_VAR_DIR": str(tmp_path),
    }
    worker = [
        str(Path(sys.executable).parent / "rq"),
        "worker",
        "--burst",
        "--worker-class",
        "rq.worker.SimpleWorker",
        "--url",
        redis_url,
        "--serializer",
        "rq.serializers.JSONSerializer",
        "datapoints",
    ]
    finished = subprocess.run(worker, cwd=REPO_ROOT, env=environment, timeout=120, check=False)
    assert finished.returncode == 0
    shown = document(client, uploader.headers, doc_id)
    assert (shown["status"], shown["source_datapoint_count"]) == ("processed", 5)


def test_operators_process_a_document_whose_job_was_lost(
    client: FlaskClient, app: Flask, redis_client: redis.Redis, uploader: Person
) -> None:
    doc_id = uploaded(client, uploader.headers, LONG)
    redis_client.flushdb()  # the job is lost
    runner = app.test_cli_runner()
    result = runner.invoke(args=["process-document", str(doc_id)])
    assert result.exit_code == 0, result.output
    assert result.output == f"document {doc_id}: processed\n"
    with app.app_context():
        db.session.execute(update(Document).values(status="processing"))
        db.session.commit()
    refused = runner.invoke(args=["process-document", str(doc_id)])
    assert refused.exit_code == 1
    assert "--force if its worker is gone" in refused.output
    forced = runner.invoke(args=["process-document", str(doc_id), "--force"])
    assert forced.output == f"document {doc_id}: processed\n"
    assert document(client, uploader.headers, doc_id)["source_datapoint_count"] == 5
    assert runner.invoke(args=["process-document", "999"]).exit_code == 1


def test_a_map_moved_to_another_master_merges_there_too(
    client: FlaskClient,
    app: Flask,
    redis_client: redis.Redis,
    uploader: Person,
    staff: Person,
    world: World,
) -> None:
    doc_id = uploaded(client, uploader.headers, LONG)
    run_worker(app, redis_client)
    reviews = review_rows(client, uploader.headers, doc_id)
    made = {
        kind: _map(client, staff, kind, reviews[(kind, string)]["source_object_id"], master)
        for kind, string, master in (
            ("region", "Kano", world.region),
            ("campaign", "June 2015", world.campaign),
            ("indicator", "missed children", world.indicator),
        )
    }
    moved = client.put(
        f"/api/v2/region_map/{made['region']}",
        json={"master_object_id": world.region2},
        headers=staff.headers,
    )
    assert moved.status_code == 200, moved.get_json()
    assert stored_values(app) == {
        (world.region, world.campaign, world.indicator): (12.0, doc_id),
        (world.region2, world.campaign, world.indicator): (12.0, doc_id),
    }
    kano = review_rows(client, uploader.headers, doc_id)[("region", "Kano")]
    assert (kano["map_id"], kano["master_object_id"]) == (made["region"], world.region2)
    assert kano["master_dp_count"] == 2
