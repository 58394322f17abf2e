"""tickets_service's HTTP API: not built yet. The blueprint has no routes, so every
path answers 404 (the gateway's route table lists the planned routes: docs/routes.md)."""

from servicekit import Blueprint

blp = Blueprint("tickets", __name__, description="Support tickets of the college fest platform.")

blueprints = [blp]
