"""tickets_service's HTTP API: thin flask-smorest blueprints over service.py."""

from servicekit import Blueprint

blp = Blueprint("tickets", __name__, description="Support tickets of the college fest platform.")

blueprints = [blp]
