"""HTTP routes of staffing: parse, call service.py, serialize."""

from servicekit import Blueprint

blp = Blueprint("staffing", __name__, description="Organisers and volunteers of events.")
