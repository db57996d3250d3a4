"""The storm guard (issue 27): never DM the whole company because one detection misfired.

``guard``: counting each detection's DMs in SQL and holding those past its limit;
``decide``: a responder's Release, Discard or Escalate all; ``message`` and ``posts``: the one
security-channel message per storm, updated in place.
"""
