"""HTTP routes of catalogue: parse, call service.py, serialize."""

from servicekit import Blueprint

blp = Blueprint("catalogue", __name__, description="Categories and tags of events.")
