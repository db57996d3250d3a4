"""Orchestration: apply domain events to stored alerts, and carry out the resulting effects."""
