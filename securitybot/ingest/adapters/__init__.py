"""Adapters: map monitoring tools' native webhook payloads onto alerts (``AlertIn``).

Kept import-light on purpose: ``securitybot.config`` imports :mod:`.templates` to validate
templates at start, so nothing here may import the configuration module back.
"""
