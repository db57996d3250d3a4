"""Paging the on-call responder through PagerDuty and Opsgenie, kept in step with the Slack
escalation (docs/paging.md): ``hooks`` joins the alert lifecycle, ``handlers`` delivers through
the outbox, ``webhook`` takes PagerDuty's answers back."""
