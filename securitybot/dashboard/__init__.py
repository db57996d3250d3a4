"""The security team's web dashboard (enabled by the ``dashboard`` configuration section)."""

from securitybot.dashboard.views import dashboard_routes

__all__ = ["dashboard_routes"]
