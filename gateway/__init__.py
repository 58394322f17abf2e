"""The API gateway: one route table, token checks, streaming forwarding."""
