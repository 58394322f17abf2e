"""events_service's HTTP API: one flask-smorest blueprint per domain (each domain's
api.py parses, calls its service.py and serializes)."""

from events_service.catalogue.api import blp as catalogue
from events_service.events.api import blp as events
from events_service.registrations.api import blp as registrations
from events_service.staffing.api import blp as staffing
from events_service.teams.api import blp as teams

blueprints = [catalogue, events, teams, registrations, staffing]
