"""Organisers and volunteers of an event."""
