"""Every `/api/v2/<resource>/`, declared: its fields (what each shows, filters, orders and
writes), its row permission, who writes it. The engine (datapoints_service/engine/)
serves them all alike.

Staff write a resource with the privilege named after it (`identity.can("region",
"create")`, ...); a superuser writes all. `custom_dashboard` rows are their owner's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, false, select

from datapoints_service import permissions, rules, tree
from datapoints_service.documents import maps
from datapoints_service.engine.fields import EXACT, IN, Field, Kind
from datapoints_service.engine.resource import Caller, Hooks, Resource
from datapoints_service.models import (
    AGGREGATIONS,
    DOCUMENT_STATUSES,
    READ,
    READ_WRITE,
    SUM,
    Campaign,
    CampaignMap,
    CampaignType,
    CustomDashboard,
    DataPoint,
    DataPointHistory,
    Document,
    DocumentReview,
    Group,
    GroupPermission,
    Indicator,
    IndicatorMap,
    IndicatorTag,
    Office,
    Region,
    RegionMap,
    RegionPermission,
    RegionType,
    SourceCampaign,
    SourceIndicator,
    SourceRegion,
    User,
    UserGroup,
    UserPermission,
)

USERS_READ_ONLY = (
    "users are auth_service's: create and change them there (POST /users/, PUT "
    "/users/<username>); this service keeps a read-only copy"
)
DOCUMENTS_READ_ONLY = "documents are created by uploads, not written here"
REVIEWS_READ_ONLY = "document_review rows are written by processing documents and by maps"
HISTORY_READ_ONLY = "the history is written by data entry and documents"
VALUES_READ_ONLY = "stored values are written by data entry (/api/v1/dataentry) and documents"


def _id() -> Field:
    return Field("id", Kind.INT, writable=False)


def _created_at() -> Field:
    return Field("created_at", Kind.DATETIME, writable=False)


def _name(unique: bool = True) -> Field:
    return Field("name", Kind.STR, required=True, unique=unique)


def _ref(name: str, column: str, target: str, *, nullable: bool = False, **kw: Any) -> Field:
    """A reference to `target`, written as `column`, filtered by id (`=`, `__in`)."""
    return Field(
        name,
        Kind.INT,
        column=column,
        ref=target,
        required=not nullable,
        nullable=nullable,
        operators=frozenset({EXACT, IN}),
        **kw,
    )


def _read_write() -> Field:
    return Field("read_write", Kind.STR, choices=READ_WRITE, default=lambda _values: READ)


def _slug_from(key: str) -> Any:
    return lambda values: rules.slugify(str(values.get(key, "")))


def _maps(name: str, model: Any, source: str, master: str) -> Resource:
    kind = master
    return Resource(
        name,
        model,
        (
            _id(),
            _ref("master_object_id", "master_object_id", master),
            _ref("source_object_id", "source_object_id", source, unique=True),
            Field("mapped_by_id", Kind.INT, ref="user", writable=False, nullable=True),
        ),
        privilege=name,
        author="mapped_by_id",
        hooks=Hooks(after_write=maps.after_write(kind), before_delete=maps.before_delete(kind)),
    )


def _sources(name: str, model: Any) -> Resource:
    fields = (_id(), Field("source_string", Kind.STR))
    return Resource(name, model, fields, label="source_string", routed=False, read_only=name)


def _owned_by_caller(caller: Caller) -> ColumnElement[Any]:
    return case((CustomDashboard.owner_id == caller.user_id, True), else_=false())


def _owner_username(_caller: Caller) -> ColumnElement[Any]:
    owner = select(User.username).where(User.id == CustomDashboard.owner_id)
    return owner.scalar_subquery()


def _email(caller: Caller) -> ColumnElement[Any]:
    """An address is shown to staff and to its user only."""
    if caller.staff:
        return User.__table__.c.email  # type: ignore[no-any-return]
    return case((User.id == caller.user_id, User.email), else_=None)


def _not_filtered(name: str, kind: Kind, expression: Any) -> Field:
    return Field(
        name, kind, writable=False, orderable=False, operators=frozenset(), expression=expression
    )


RESOURCES: dict[str, Resource] = {
    resource.name: resource
    for resource in (
        Resource(
            "office",
            Office,
            (_id(), _name(), _created_at()),
            privilege="office",
            resource_uri=True,
        ),
        Resource("region_type", RegionType, (_id(), _name()), privilege="region_type"),
        Resource(
            "region",
            Region,
            (
                _id(),
                _name(unique=False),
                Field("slug", Kind.STR, unique=True, default=_slug_from("region_code")),
                Field("latitude", Kind.FLOAT, nullable=True),
                Field("longitude", Kind.FLOAT, nullable=True),
                Field("region_code", Kind.STR, required=True, unique=True),
                _ref("region_type", "region_type_id", "region_type"),
                Field("shape_file_path", Kind.STR, nullable=True),
                Field("shape", Kind.JSON, nullable=True, orderable=False),
                _ref("office", "office_id", "office"),
                _ref("parent_region", "parent_region_id", "region", nullable=True),
                Field("source_id", Kind.INT, nullable=True),
                _created_at(),
            ),
            privilege="region",
            slug="slug",
            resource_uri=True,
            visibility=permissions.regions,
            hooks=Hooks(
                validate=rules.region,
                after_write=rules.region_written,
                before_delete=tree.before_delete,
            ),
        ),
        Resource("campaign_type", CampaignType, (_id(), _name()), privilege="campaign_type"),
        Resource(
            "campaign",
            Campaign,
            (
                _id(),
                Field("name", Kind.STR, default=lambda values: values.get("slug", "")),
                Field("slug", Kind.STR, required=True, unique=True),
                Field("start_date", Kind.DATE, required=True),
                Field("end_date", Kind.DATE, required=True),
                _ref("office", "office_id", "office"),
                _ref("campaign_type", "campaign_type_id", "campaign_type"),
                _created_at(),
            ),
            privilege="campaign",
            slug="slug",
            resource_uri=True,
            hooks=Hooks(validate=rules.campaign_dates),
        ),
        Resource(
            "indicator",
            Indicator,
            (
                _id(),
                _name(unique=False),
                Field("short_name", Kind.STR, default=lambda values: values.get("name", "")),
                Field("slug", Kind.STR, unique=True, default=_slug_from("name")),
                Field("description", Kind.STR, default=lambda _values: ""),
                Field("is_reported", Kind.BOOL, default=lambda _values: True),
                Field("source_id", Kind.INT, nullable=True),
                Field("bound_json", Kind.JSON, orderable=False, default=lambda _values: []),
                Field("tag_json", Kind.JSON, orderable=False, default=lambda _values: []),
                Field("aggregation", Kind.STR, choices=AGGREGATIONS, default=lambda _values: SUM),
            ),
            privilege="indicator",
            slug="slug",
            visibility=permissions.indicators,
            hooks=Hooks(validate=rules.indicator_json, after_write=rules.indicator_written),
        ),
        Resource(
            "indicator_tag",
            IndicatorTag,
            (
                _id(),
                Field("tag_name", Kind.STR, required=True, unique=True),
                _ref("parent_tag_id", "parent_tag_id", "indicator_tag", nullable=True),
            ),
            privilege="indicator_tag",
            label="tag_name",
            hooks=Hooks(validate=rules.tag_parent, before_delete=rules.tag_in_use),
        ),
        _sources("source_region", SourceRegion),
        _sources("source_campaign", SourceCampaign),
        _sources("source_indicator", SourceIndicator),
        _maps("region_map", RegionMap, "source_region", "region"),
        _maps("campaign_map", CampaignMap, "source_campaign", "campaign"),
        _maps("indicator_map", IndicatorMap, "source_indicator", "indicator"),
        Resource("group", Group, (_id(), _name()), privilege="group"),
        Resource(
            "user_group",
            UserGroup,
            (
                _id(),
                _ref("user_id", "user_id", "user", aliases=("user",)),
                _ref("group_id", "group_id", "group", aliases=("group",)),
            ),
            privilege="user_group",
            unique_together=(("user_id", "group_id"),),
            visibility=permissions.own_rows(UserGroup),
        ),
        Resource(
            "region_permission",
            RegionPermission,
            (
                _id(),
                _read_write(),
                _ref("user_id", "user_id", "user", aliases=("user",)),
                _ref("region_id", "region_id", "region", aliases=("region",)),
            ),
            privilege="region_permission",
            unique_together=(("user_id", "region_id", "read_write"),),
            visibility=permissions.own_rows(RegionPermission),
        ),
        Resource(
            "group_permission",
            GroupPermission,
            (
                _id(),
                _ref("indicator_id", "indicator_id", "indicator", aliases=("indicator",)),
                _ref("group_id", "group_id", "group", aliases=("group",)),
                _read_write(),
            ),
            privilege="group_permission",
            unique_together=(("group_id", "indicator_id", "read_write"),),
            visibility=permissions.group_permissions,
        ),
        Resource(
            "user_permission",
            UserPermission,
            (
                _id(),
                _ref("user_id", "user_id", "user", aliases=("user",)),
                Field("auth_code", Kind.STR, required=True),
            ),
            privilege="user_permission",
            unique_together=(("user_id", "auth_code"),),
            visibility=permissions.own_rows(UserPermission),
        ),
        Resource(
            "custom_dashboard",
            CustomDashboard,
            (
                _id(),
                _ref("default_office_id", "default_office_id", "office", nullable=True),
                Field("description", Kind.STR, default=lambda _values: ""),
                Field("title", Kind.STR, required=True),
                Field("dashboard_json", Kind.JSON, orderable=False, default=lambda _values: []),
                Field("shared", Kind.BOOL, default=lambda _values: False),
                _not_filtered("owned_by_current_user", Kind.BOOL, _owned_by_caller),
                _not_filtered("owner_username", Kind.STR, _owner_username),
                Field("owner_id", Kind.INT, ref="user", writable=False),
            ),
            owner="owner_id",
            label="title",
            visibility=permissions.dashboards,
        ),
        Resource(
            "document",
            Document,
            (
                _id(),
                Field("source_datapoint_count", Kind.INT, writable=False),
                Field("is_processed", Kind.BOOL, writable=False),
                _created_at(),
                Field("docfile", Kind.STR, writable=False),
                Field("doc_text", Kind.STR, writable=False, nullable=True, orderable=False),
                Field("master_datapoint_count", Kind.INT, writable=False),
                Field("source_id", Kind.INT, writable=False, nullable=True),
                Field("created_by_id", Kind.INT, ref="user", writable=False, nullable=True),
                Field("guid", Kind.STR, writable=False),
                Field("status", Kind.STR, writable=False, choices=DOCUMENT_STATUSES),
                Field("rows_total", Kind.INT, writable=False),
                Field("rows_done", Kind.INT, writable=False),
                Field("row_error_count", Kind.INT, writable=False),
                Field("row_errors", Kind.JSON, writable=False, orderable=False),
                Field("error", Kind.STR, writable=False, nullable=True, orderable=False),
                Field("processed_at", Kind.DATETIME, writable=False, nullable=True),
            ),
            label="guid",
            read_only=DOCUMENTS_READ_ONLY,
            visibility=permissions.documents,
        ),
        Resource(
            "document_review",
            DocumentReview,
            (
                _id(),
                Field("master_dp_count", Kind.INT, writable=False),
                Field("map_id", Kind.INT, writable=False, nullable=True),
                Field("master_object_id", Kind.INT, writable=False, nullable=True),
                Field("source_string", Kind.STR, writable=False),
                Field("source_object_id", Kind.INT, writable=False),
                Field(
                    "db_model",
                    Kind.STR,
                    writable=False,
                    choices=("region", "campaign", "indicator"),
                ),
                Field("source_dp_count", Kind.INT, writable=False),
                Field("document_id", Kind.INT, ref="document", writable=False),
            ),
            label="source_string",
            read_only=REVIEWS_READ_ONLY,
            visibility=permissions.document_reviews,
        ),
        # Not served here (GET /api/v1/datapoint/ reads values): declared so that deleting a
        # region, campaign or indicator holding stored values names them as its referrers.
        Resource(
            "datapoint",
            DataPoint,
            (
                _id(),
                Field("region_id", Kind.INT, ref="region"),
                Field("campaign_id", Kind.INT, ref="campaign"),
                Field("indicator_id", Kind.INT, ref="indicator"),
                Field("value", Kind.FLOAT),
            ),
            label="id",
            routed=False,
            read_only=VALUES_READ_ONLY,
        ),
        Resource(
            "datapoint_history",
            DataPointHistory,
            (
                _id(),
                Field("region_id", Kind.INT, writable=False),
                Field("campaign_id", Kind.INT, writable=False),
                Field("indicator_id", Kind.INT, writable=False),
                Field("old_value", Kind.FLOAT, writable=False, nullable=True),
                Field("new_value", Kind.FLOAT, writable=False, nullable=True),
                Field("changed_by_id", Kind.INT, writable=False, nullable=True),
                Field("document_id", Kind.INT, writable=False, nullable=True),
                Field("changed_at", Kind.DATETIME, writable=False),
            ),
            label="id",
            read_only=HISTORY_READ_ONLY,
            visibility=permissions.staff_only,
        ),
        Resource(
            "user",
            User,
            (
                _id(),
                Field("username", Kind.STR),
                Field("first_name", Kind.STR),
                Field("last_name", Kind.STR),
                Field("is_active", Kind.BOOL),
                Field("is_superuser", Kind.BOOL),
                Field("is_staff", Kind.BOOL),
                Field("last_login", Kind.DATETIME, nullable=True),
                Field("email", Kind.STR, nullable=True, expression=_email),
                Field("date_joined", Kind.DATETIME),
            ),
            label="username",
            read_only=USERS_READ_ONLY,
        ),
    )
}
