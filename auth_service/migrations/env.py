"""Alembic environment: the shared one in servicekit."""

from servicekit.migrations_env import run

run()
