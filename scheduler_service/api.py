"""scheduler_service's HTTP API: thin flask-smorest blueprints over service.py."""

from servicekit import Blueprint

blp = Blueprint(
    "scheduler",
    __name__,
    description="Outbound HTTP calls scheduled at given timestamps, run by an RQ worker.",
)

blueprints = [blp]
