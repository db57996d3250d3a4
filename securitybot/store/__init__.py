"""Persistence: models, engine/session handling, repository queries."""
