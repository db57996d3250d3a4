"""Anomaly Event Response (AER): detect risky activity and decide what to do about it.

The pure core, with no I/O: :mod:`.events` parses untrusted input, :mod:`.baselines` learns
per-org thresholds, :mod:`.detect` turns events into anomalies, :mod:`.decide` turns anomalies
into recorded decisions, and :mod:`.rules` loads ``alerts/aer_rules.yaml``.

Anomaly types follow Slack's audit-log reasons; how the engine raises each:

* ``tor`` - the IP is a Tor exit; ``ip_address`` - the IP is on the org's indicator list.
* ``asn`` - rule ``cloud_asn`` (first request from a hosting-provider ASN), ``new_asn`` or
  ``new_country`` (new for a user who already has history; a user's first event only
  establishes the profile).
* ``impossible_travel`` - two located events imply a speed above ``travel.max_speed_kmh``.
* Within one session, against its first event: UA product changed (``Slack_SSB`` ->
  ``python-requests``) -> ``session_fingerprint``; same product, different UA string ->
  ``unexpected_user_agent``; ``client`` changed -> ``unexpected_client``.
* ``user_agent`` - a UA product the user has never used before (user with history).
* ``spoofed_user_agent`` - the UA claims a Slack app the ``client`` contradicts, or a scripting
  UA (curl, python-requests...) arrives on a desktop/mobile client.
* Volume types - one user's count of an action in a one-hour bucket crosses the org threshold;
  raised once per (org, user, action, bucket).

Trusted ASNs/CIDRs of an org skip every network-type check. Non-volume anomalies repeat at most
once per ``dedupe.window`` per (user, type, rule, session or IP).
"""

from securitybot.aer.baselines import (
    Baseline,
    ThresholdConfig,
    learn_baseline,
    resolve_threshold_config,
    threshold,
)
from securitybot.aer.decide import (
    Action,
    Decision,
    OrgAerConfig,
    UserHistory,
    Verdict,
    decide,
    merge_org_config,
)
from securitybot.aer.detect import Anomaly, DetectionEngine
from securitybot.aer.detection_config import DetectionConfig
from securitybot.aer.events import ActivityEvent, BatchError, EventError, parse_batch, parse_event
from securitybot.aer.reference_data import TorList
from securitybot.aer.rules import Rules, RulesError, load_rules

__all__ = [
    "Action",
    "ActivityEvent",
    "Anomaly",
    "Baseline",
    "BatchError",
    "Decision",
    "DetectionConfig",
    "DetectionEngine",
    "EventError",
    "OrgAerConfig",
    "Rules",
    "RulesError",
    "ThresholdConfig",
    "TorList",
    "UserHistory",
    "Verdict",
    "decide",
    "learn_baseline",
    "load_rules",
    "merge_org_config",
    "parse_batch",
    "parse_event",
    "resolve_threshold_config",
    "threshold",
]
