"""media_service's HTTP API: thin flask-smorest blueprints over service.py."""

from servicekit import Blueprint

blp = Blueprint("media", __name__, description="Per-user images and the file store of the suite.")

blueprints = [blp]
