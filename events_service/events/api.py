"""HTTP routes of events: parse, call service.py, serialize."""

from servicekit import Blueprint

blp = Blueprint("events", __name__, description="Events, their photos and calendars.")
