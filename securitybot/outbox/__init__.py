"""Delivering outbox rows: claim, run the handler, record the result, retry with backoff."""
