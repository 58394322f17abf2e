"""datapoints_service's database models (SQLAlchemy 2 typed models).

Column names are the document's write names (`office_id`, `parent_region_id`, ...), so
the resource declarations (datapoints_service/resources/) map wire to column one to one.

The region tree is kept twice: `Region.parent_region_id` (the document's field) and the
closure table `RegionTree`, one row per (ancestor, descendant) pair at `depth` levels
apart, a region being its own ancestor at depth 0. "Every region under these regions,
at most N levels down" is then one indexed join (see docs/datapoints_service.md for the
measurements against a recursive CTE). The tree is maintained by
datapoints_service/regions.py on every region write, in the same transaction.

Users belong to auth_service: `User` is this service's read-only copy, one row per
publicId with this service's own integer id (what the permission tables refer to). It
never holds a password.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from servicekit import make_db
from servicekit.db import UtcDateTime, utcnow

db = make_db()

NAME_LENGTH = 255
CODE_LENGTH = 255
SLUG_LENGTH = 255
PATH_LENGTH = 1000
PUBLIC_ID_LENGTH = 64  # auth_service's publicId
USERNAME_LENGTH = 150
EMAIL_LENGTH = 254
AUTH_CODE_LENGTH = 100
READ, WRITE = "r", "w"
READ_WRITE = (READ, WRITE)
RW_CHECK = "read_write IN ('r', 'w')"
# How an indicator's values roll up to a region that has none of its own.
SUM, AVG, NONE = "sum", "avg", "none"
AGGREGATIONS = (SUM, AVG, NONE)
# Where a document's processing stands.
QUEUED, PROCESSING, PROCESSED, FAILED = "queued", "processing", "processed", "failed"
DOCUMENT_STATUSES = (QUEUED, PROCESSING, PROCESSED, FAILED)
# The kinds of source objects (document_review.db_model).
REGION, CAMPAIGN, INDICATOR = "region", "campaign", "indicator"


class Office(db.Model):  # type: ignore[name-defined]
    __tablename__ = "offices"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class RegionType(db.Model):  # type: ignore[name-defined]
    __tablename__ = "region_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)


class Region(db.Model):  # type: ignore[name-defined]
    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    region_code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    slug: Mapped[str] = mapped_column(String(SLUG_LENGTH), unique=True)
    region_type_id: Mapped[int] = mapped_column(ForeignKey("region_types.id"), index=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), index=True)
    parent_region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    shape_file_path: Mapped[str | None] = mapped_column(String(PATH_LENGTH))
    # The region's outline, a GeoJSON geometry (Polygon or MultiPolygon), when one is known.
    shape: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    source_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class RegionTree(db.Model):  # type: ignore[name-defined]
    """The closure of the region tree: `descendant_id` is `depth` levels under
    `ancestor_id` (0: the region itself)."""

    __tablename__ = "region_tree"

    ancestor_id: Mapped[int] = mapped_column(
        ForeignKey("regions.id", ondelete="CASCADE"), primary_key=True
    )
    descendant_id: Mapped[int] = mapped_column(
        ForeignKey("regions.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    depth: Mapped[int] = mapped_column(Integer)


class CampaignType(db.Model):  # type: ignore[name-defined]
    __tablename__ = "campaign_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)


class Campaign(db.Model):  # type: ignore[name-defined]
    __tablename__ = "campaigns"
    __table_args__ = (CheckConstraint("end_date >= start_date", name="dates"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    slug: Mapped[str] = mapped_column(String(SLUG_LENGTH), unique=True)
    start_date: Mapped[date] = mapped_column(Date, index=True)
    end_date: Mapped[date] = mapped_column(Date)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), index=True)
    campaign_type_id: Mapped[int] = mapped_column(ForeignKey("campaign_types.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Indicator(db.Model):  # type: ignore[name-defined]
    __tablename__ = "indicators"
    __table_args__ = (CheckConstraint("aggregation IN ('sum', 'avg', 'none')", name="aggregation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    short_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    slug: Mapped[str] = mapped_column(String(SLUG_LENGTH), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    is_reported: Mapped[bool] = mapped_column(Boolean, default=True)
    source_id: Mapped[int | None] = mapped_column(Integer)
    # [{"bound_name": "bad", "mn_val": 0.2, "mx_val": null}, ...]
    bound_json: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # The ids of the indicator's tags (indicator_tag).
    tag_json: Mapped[list[int]] = mapped_column(JSON, default=list)
    # How a region without a value of its own gets one from the regions under it.
    aggregation: Mapped[str] = mapped_column(String(8), default=SUM, server_default=SUM)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class IndicatorTag(db.Model):  # type: ignore[name-defined]
    __tablename__ = "indicator_tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    tag_name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    parent_tag_id: Mapped[int | None] = mapped_column(ForeignKey("indicator_tags.id"), index=True)


class User(db.Model):  # type: ignore[name-defined]
    """auth_service's user, as this service knows it (its lifecycle stream keeps it)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(PUBLIC_ID_LENGTH), unique=True)
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH), unique=True)
    first_name: Mapped[str] = mapped_column(String(NAME_LENGTH), default="")
    last_name: Mapped[str] = mapped_column(String(NAME_LENGTH), default="")
    email: Mapped[str | None] = mapped_column(String(EMAIL_LENGTH))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False)
    last_login: Mapped[datetime | None] = mapped_column(UtcDateTime)
    date_joined: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SourceRegion(db.Model):  # type: ignore[name-defined]
    """A region as an uploaded file spelt it (created when a document is processed)."""

    __tablename__ = "source_regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_string: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SourceCampaign(db.Model):  # type: ignore[name-defined]
    __tablename__ = "source_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_string: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SourceIndicator(db.Model):  # type: ignore[name-defined]
    __tablename__ = "source_indicators"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_string: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class RegionMap(db.Model):  # type: ignore[name-defined]
    __tablename__ = "region_maps"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_object_id: Mapped[int] = mapped_column(ForeignKey("source_regions.id"), unique=True)
    master_object_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    mapped_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class CampaignMap(db.Model):  # type: ignore[name-defined]
    __tablename__ = "campaign_maps"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_object_id: Mapped[int] = mapped_column(ForeignKey("source_campaigns.id"), unique=True)
    master_object_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    mapped_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class IndicatorMap(db.Model):  # type: ignore[name-defined]
    __tablename__ = "indicator_maps"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_object_id: Mapped[int] = mapped_column(ForeignKey("source_indicators.id"), unique=True)
    master_object_id: Mapped[int] = mapped_column(ForeignKey("indicators.id"), index=True)
    mapped_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class Group(db.Model):  # type: ignore[name-defined]
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)


class UserGroup(db.Model):  # type: ignore[name-defined]
    __tablename__ = "user_groups"
    __table_args__ = (UniqueConstraint("user_id", "group_id", name="uq_user_groups_user_group"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"), index=True)


class RegionPermission(db.Model):  # type: ignore[name-defined]
    __tablename__ = "region_permissions"
    __table_args__ = (
        UniqueConstraint(
            "user_id", "region_id", "read_write", name="uq_region_permissions_user_region_rw"
        ),
        CheckConstraint(RW_CHECK, name="read_write"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    read_write: Mapped[str] = mapped_column(String(1), default=READ)


class GroupPermission(db.Model):  # type: ignore[name-defined]
    __tablename__ = "group_permissions"
    __table_args__ = (
        UniqueConstraint(
            "group_id",
            "indicator_id",
            "read_write",
            name="uq_group_permissions_group_indicator_rw",
        ),
        CheckConstraint(RW_CHECK, name="read_write"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id"))
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id"), index=True)
    read_write: Mapped[str] = mapped_column(String(1), default=READ)


class UserPermission(db.Model):  # type: ignore[name-defined]
    """A functional permission ("upload csv" and the like), as `auth_code`."""

    __tablename__ = "user_permissions"
    __table_args__ = (
        UniqueConstraint("user_id", "auth_code", name="uq_user_permissions_user_auth_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    auth_code: Mapped[str] = mapped_column(String(AUTH_CODE_LENGTH))


class CustomDashboard(db.Model):  # type: ignore[name-defined]
    __tablename__ = "custom_dashboards"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(NAME_LENGTH))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    default_office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"), index=True)
    dashboard_json: Mapped[Any] = mapped_column(JSON, default=list)
    # Shared dashboards are read by everyone; the others only by their owner (and staff).
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Document(db.Model):  # type: ignore[name-defined]
    """An uploaded CSV file of datapoints, processed on the RQ worker."""

    __tablename__ = "documents"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'processing', 'processed', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    guid: Mapped[str] = mapped_column(String(64), unique=True)
    docfile: Mapped[str] = mapped_column(String(PATH_LENGTH), default="")
    doc_text: Mapped[str | None] = mapped_column(Text)
    is_processed: Mapped[bool] = mapped_column(Boolean, default=False)
    source_datapoint_count: Mapped[int] = mapped_column(Integer, default=0)
    master_datapoint_count: Mapped[int] = mapped_column(Integer, default=0)
    source_id: Mapped[int | None] = mapped_column(Integer)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED, server_default=QUEUED)
    rows_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rows_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Rows that could not be read: [{"line": 12, "error": "value is not a number: 'x'"}].
    row_errors: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    row_error_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Why the whole document failed, when it did.
    error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class DocumentFile(db.Model):  # type: ignore[name-defined]
    """A document's uploaded bytes, kept in this service's database (the API stores
    them, the worker reads them: both reach the database, and nothing else is shared)."""

    __tablename__ = "document_files"

    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    content: Mapped[bytes] = mapped_column(LargeBinary)


class SourceDataPoint(db.Model):  # type: ignore[name-defined]
    """One value of a document, keyed by the strings the file used. It becomes a master
    datapoint once its region, campaign and indicator strings are all mapped."""

    __tablename__ = "source_datapoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    line: Mapped[int] = mapped_column(Integer)  # of the file, the header being line 1
    # Plain ids, not foreign keys: source objects are only ever added (nothing deletes
    # one), and a document's rows arrive by the hundred thousand, where three reference
    # checks per row were most of the time of writing them (measured on PostgreSQL).
    source_region_id: Mapped[int] = mapped_column(Integer, index=True)
    source_campaign_id: Mapped[int] = mapped_column(Integer, index=True)
    source_indicator_id: Mapped[int] = mapped_column(Integer, index=True)
    value: Mapped[float] = mapped_column(Float)


class DocumentReview(db.Model):  # type: ignore[name-defined]
    """A source string of a document (`db_model`: region, campaign or indicator), how
    many of the document's values use it, and whether (and to what) it is mapped yet."""

    __tablename__ = "document_reviews"
    __table_args__ = (
        UniqueConstraint(
            "document_id", "db_model", "source_object_id", name="uq_document_reviews_object"
        ),
        CheckConstraint("db_model IN ('region', 'campaign', 'indicator')", name="db_model"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    db_model: Mapped[str] = mapped_column(String(16))
    source_object_id: Mapped[int] = mapped_column(Integer, index=True)
    source_string: Mapped[str] = mapped_column(String(NAME_LENGTH))
    source_dp_count: Mapped[int] = mapped_column(Integer, default=0)
    map_id: Mapped[int | None] = mapped_column(Integer)
    master_object_id: Mapped[int | None] = mapped_column(Integer)
    master_dp_count: Mapped[int] = mapped_column(Integer, default=0)


class DataPoint(db.Model):  # type: ignore[name-defined]
    """A stored value: one per region, campaign and indicator (entered, or merged from a
    document)."""

    __tablename__ = "datapoints"
    __table_args__ = (
        UniqueConstraint("region_id", "campaign_id", "indicator_id", name="uq_datapoints_cell"),
        Index("ix_datapoints_campaign_indicator", "campaign_id", "indicator_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id"), index=True)
    value: Mapped[float] = mapped_column(Float)
    # Who and what wrote the value last, as plain ids (like the history's): a document
    # merges its values by the hundred thousand, and a reference check per row for each
    # was a third of the upsert's time on PostgreSQL. Deleting a document or a user sets
    # them to null explicitly (documents/api.py, lifecycle.py).
    document_id: Mapped[int | None] = mapped_column(Integer, index=True)  # None: entered
    changed_by_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DataPointRollup(db.Model):  # type: ignore[name-defined]
    """A computed value: a region without a stored value for an indicator and campaign
    gets the aggregate of its children's values (stored or computed), kept current by
    datapoints_service/rollup.py whenever values, the tree or an aggregation change."""

    __tablename__ = "datapoint_rollups"
    __table_args__ = (
        Index("ix_datapoint_rollups_campaign_indicator", "campaign_id", "indicator_id"),
    )

    region_id: Mapped[int] = mapped_column(
        ForeignKey("regions.id", ondelete="CASCADE"), primary_key=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    indicator_id: Mapped[int] = mapped_column(
        ForeignKey("indicators.id", ondelete="CASCADE"), primary_key=True
    )
    value: Mapped[float] = mapped_column(Float)


class DataPointHistory(db.Model):  # type: ignore[name-defined]
    """Every change of a stored value: who, when, from what to what (None: no value).
    Plain ids, not references: the history outlives what it names."""

    __tablename__ = "datapoint_history"
    __table_args__ = (
        Index("ix_datapoint_history_cell", "region_id", "campaign_id", "indicator_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(Integer)
    campaign_id: Mapped[int] = mapped_column(Integer)
    indicator_id: Mapped[int] = mapped_column(Integer)
    old_value: Mapped[float | None] = mapped_column(Float)
    new_value: Mapped[float | None] = mapped_column(Float)
    changed_by_id: Mapped[int | None] = mapped_column(Integer, index=True)
    document_id: Mapped[int | None] = mapped_column(Integer, index=True)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
