"""Shared pytest configuration: the servicekit fixtures for every test package."""

pytest_plugins = ["servicekit.testing"]
