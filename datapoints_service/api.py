"""datapoints_service's HTTP API: not built yet. The blueprint has no routes, so every
path answers 404 (the gateway's route table lists the planned routes: docs/routes.md)."""

from servicekit import Blueprint

blp = Blueprint(
    "datapoints",
    __name__,
    description="Health-campaign data: regions, indicators, campaigns, datapoints.",
)

blueprints = [blp]
