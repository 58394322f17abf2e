"""events_service's HTTP API: not built yet. The blueprint has no routes, so every
path answers 404 (the gateway's route table lists the planned routes: docs/routes.md)."""

from servicekit import Blueprint

blp = Blueprint(
    "events",
    __name__,
    description="Categories, tags, events, registrations, teams, organisers, volunteers.",
)

blueprints = [blp]
