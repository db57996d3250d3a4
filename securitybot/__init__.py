"""Securitybot."""
