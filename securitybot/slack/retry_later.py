"""How Slack's "try again later" becomes the outbox's retry, the same for every handler."""

from __future__ import annotations

from datetime import timedelta

from securitybot.outbox.jobs import Job, RetryAt, backoff
from securitybot.slack.api_types import SlackRetryLater
from securitybot.store.models import utcnow


def retry_later(job: Job, exc: SlackRetryLater) -> RetryAt:
    """Again when Slack said (its Retry-After), else after the job's backoff. A call Slack
    refused for its limits, or one never tried, is "not yet" (``spends_attempt`` False): it
    uses up none of the job's attempts, however many there are."""
    delay = timedelta(seconds=exc.retry_after) if exc.retry_after else backoff(job.attempts + 1)
    return RetryAt(utcnow() + delay, str(exc), failure=exc.spends_attempt)
