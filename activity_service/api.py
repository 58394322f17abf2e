"""activity_service's HTTP API: thin flask-smorest blueprints over service.py."""

from servicekit import Blueprint

blp = Blueprint("activity", __name__, description="Members' activity periods: upload and download.")

blueprints = [blp]
