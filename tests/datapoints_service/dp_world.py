"""A small world of rows every resource test can refer to, written straight to the
database (what the resources under test refer to, not what they test)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import Flask

from datapoints_service import tree
from datapoints_service.models import (
    Campaign,
    CampaignType,
    Group,
    Indicator,
    IndicatorTag,
    Office,
    Region,
    RegionType,
    SourceCampaign,
    SourceIndicator,
    SourceRegion,
    db,
)


@dataclass(frozen=True)
class World:
    office: int
    region_type: int
    region: int
    region2: int
    campaign_type: int
    campaign: int
    campaign2: int
    indicator: int
    indicator2: int
    tag: int
    group: int
    group2: int
    source_region: int
    source_campaign: int
    source_indicator: int


def make_world(app: Flask) -> World:
    with app.app_context():
        session = db.session()
        office, kind = Office(name="world office"), RegionType(name="world type")
        campaign_type, tag = CampaignType(name="world campaigns"), IndicatorTag(tag_name="world")
        groups = [Group(name="world group"), Group(name="world group 2")]
        sources = [SourceRegion(source_string="NG"), SourceCampaign(source_string="June")]
        sources.append(SourceIndicator(source_string="missed"))
        session.add_all([office, kind, campaign_type, tag, *groups, *sources])
        session.flush()
        regions = [
            Region(
                name=name,
                region_code=name,
                slug=name,
                office_id=office.id,
                region_type_id=kind.id,
            )
            for name in ("world-region", "world-region-2")
        ]
        campaigns = [
            Campaign(
                name=slug,
                slug=slug,
                start_date=date(2015, 6, 1),
                end_date=date(2015, 6, 30),
                office_id=office.id,
                campaign_type_id=campaign_type.id,
            )
            for slug in ("world-campaign", "world-campaign-2")
        ]
        indicators = [
            Indicator(name=slug, short_name=slug, slug=slug)
            for slug in ("world-indicator", "world-indicator-2")
        ]
        session.add_all([*regions, *campaigns, *indicators])
        session.flush()
        for region in regions:
            tree.add(session, region.id, None)
        world = World(
            office=office.id,
            region_type=kind.id,
            region=regions[0].id,
            region2=regions[1].id,
            campaign_type=campaign_type.id,
            campaign=campaigns[0].id,
            campaign2=campaigns[1].id,
            indicator=indicators[0].id,
            indicator2=indicators[1].id,
            tag=tag.id,
            group=groups[0].id,
            group2=groups[1].id,
            source_region=sources[0].id,
            source_campaign=sources[1].id,
            source_indicator=sources[2].id,
        )
        session.commit()
        return world
