"""Connections: OAuth and API-key connect flows, the token lifecycle, health checks."""
