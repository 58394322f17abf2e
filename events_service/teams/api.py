"""HTTP routes of teams: parse, call service.py, serialize."""

from servicekit import Blueprint

blp = Blueprint("teams", __name__, description="Teams and invitations.")
