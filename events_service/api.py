"""events_service's HTTP API: thin flask-smorest blueprints over service.py."""

from servicekit import Blueprint

blp = Blueprint(
    "events",
    __name__,
    description="Categories, tags, events, registrations, teams, organisers, volunteers.",
)

blueprints = [blp]
