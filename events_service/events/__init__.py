"""Events: create, edit, list, delete; photos and logos; calendars."""
