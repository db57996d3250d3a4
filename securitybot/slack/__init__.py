"""Slack at the edge: Web API gateway, Block Kit rendering, Bolt listeners."""
