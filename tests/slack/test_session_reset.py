"""Whose token resets a person: the home org's, an installed workspace's, or none."""

from __future__ import annotations

from securitybot.slack.session_reset import UNAVAILABLE, SessionResetUnavailable, installed_team


def test_the_home_workspaces_people_and_unknown_people_use_the_home_admin_token() -> None:
    assert installed_team(["T1"], ["TBLUE"], "T1") is None
    assert installed_team(["T1", "TBLUE"], ["TBLUE"], "T1") is None  # home first
    assert installed_team([], ["TBLUE"], "T1") is None


def test_a_person_of_an_installed_workspace_is_reset_through_it() -> None:
    assert installed_team(["TBLUE"], ["TGREEN", "TBLUE"], "T1") == "TBLUE"
    # A workspace neither home nor installed (Grid workspaces of the home org): home token.
    assert installed_team(["T2"], ["TBLUE"], "T1") is None


def test_unavailable_names_the_workspace_for_audit_and_post() -> None:
    exc = SessionResetUnavailable("TBLUE", "Blue Co", "not on Enterprise Grid")
    assert exc.error == UNAVAILABLE
    assert exc.details() == {"error": "session_reset_unavailable", "team": "TBLUE",
                             "workspace": "Blue Co", "why": "not on Enterprise Grid"}  # fmt: skip
    assert str(exc) == "admin.users.session.reset: session_reset_unavailable"
