"""HTTP routes of registrations: parse, call service.py, serialize."""

from servicekit import Blueprint

blp = Blueprint(
    "registrations", __name__, description="Registrations for events: seats, waiting list, payment."
)
