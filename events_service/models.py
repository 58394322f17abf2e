"""events_service's database models (SQLAlchemy 2 typed models)."""

from servicekit import make_db

db = make_db()
