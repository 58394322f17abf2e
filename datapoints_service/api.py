"""datapoints_service's HTTP API: thin flask-smorest blueprints over service.py."""

from servicekit import Blueprint

blp = Blueprint(
    "datapoints",
    __name__,
    description="Health-campaign data: regions, indicators, campaigns, datapoints.",
)

blueprints = [blp]
