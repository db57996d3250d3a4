"""Okta's own example responses for Okta Verify push, kept verbatim (as JSON text) so the fake
Okta and the contract tests answer exactly what Okta documents, ids and ``_links`` included.

Sources, each named beside its text:

* developer.okta.com, Factors API ("/docs/reference/api/factors/", okta/okta-developer-docs),
  "Issue a Push Factor challenge" and "Poll for verify transaction completion".
* okta/okta-sdk-dotnet, ``src/Okta.Sdk.UnitTest/Api/UserFactorApiTests.cs``,
  ``GetVerifyUserFactorResponseTransactionIdViaLinks``: a verify answer whose transaction id
  has a dot (``v2mst.GldKV5VxTrifyeZmWSQguA``), the shape real Okta orgs send.
* okta/okta-auth-js, ``test/support/xhr/error-throttle.js``: the 429 error object (E0000047).
* developer.okta.com, "Rate Limits" (okta/okta-developer-docs,
  ``docs/api/getting_started/rate-limits``): the three ``X-Rate-Limit-*`` headers.

``${yourOktaDomain}`` is Okta's own placeholder for the org's host; ``render`` fills it in and,
for the fake, swaps the example's ids for the fake's own, leaving every other byte as documented.
"""

from __future__ import annotations

import json
from typing import Any

DOMAIN = "${yourOktaDomain}"
# The ids the Factors API page uses in its push examples.
USER_ID = "00u15s1KDETTQMQYABRL"
FACTOR_ID = "opfh52xcuft3J4uZc0g3"
TRANSACTION_ID = "mst1eiHghhPxf0yhp0g"
# The dotted transaction id of the .NET SDK fixture (and of real orgs: "v2mst.…").
DOTTED_TRANSACTION_ID = "v2mst.GldKV5VxTrifyeZmWSQguA"

# Factors API, "Issue a Push Factor challenge", Response example (also "Poll for verify
# transaction completion", Response example (waiting): the same body).
VERIFY_PUSH_WAITING = """{
  "expiresAt": "2015-04-01T15:57:32.000Z",
  "factorResult": "WAITING",
  "_links": {
    "poll": {
      "href": "https://${yourOktaDomain}/api/v1/users/00u15s1KDETTQMQYABRL/factors/opfh52xcuft3J4uZc0g3/transactions/mst1eiHghhPxf0yhp0g",
      "hints": {
        "allow": [
          "GET"
        ]
      }
    },
    "cancel": {
      "href": "https://${yourOktaDomain}/api/v1/users/00u15s1KDETTQMQYABRL/factors/opfh52xcuft3J4uZc0g3/transactions/mst1eiHghhPxf0yhp0g",
      "hints": {
        "allow": [
          "DELETE"
        ]
      }
    }
  }
}"""
POLL_WAITING = VERIFY_PUSH_WAITING

# okta-sdk-dotnet UserFactorApiTests.cs, GetVerifyUserFactorResponseTransactionIdViaLinks.
SDK_VERIFY_PUSH_WAITING = """{
                  "expiresAt": "2015-04-01T15:57:32.000Z",
                  "factorResult": "WAITING",
                  "profile":{
                     "credentialId":"jane.doe@example.com"
                  },
                  "_links": {
                    "poll": {
                      "href": "https://${yourOktaDomain}/api/v1/users/00u15s1KDETTQMQYABRL/factors/opfh52xcuft3J4uZc0g3/transactions/verificationTransactionId",
                      "hints": {
                        "allow": [
                          "GET"
                        ]
                      }
                    },
                    "cancel": {
                      "href": "https://${yourOktaDomain}/api/v1/users/00u15s1KDETTQMQYABRL/factors/opfh52xcuft3J4uZc0g3/transactions/v2mst.GldKV5VxTrifyeZmWSQguA",
                      "hints": {
                        "allow": [
                          "DELETE"
                        ]
                      }
                    }
                  }
                }"""

# Factors API, "Poll for verify transaction completion", Response example (approved).
POLL_SUCCESS = """{
  "factorResult": "SUCCESS"
}"""

# Factors API, "Poll for verify transaction completion", Response example (rejected).
POLL_REJECTED = """{
  "factorResult": "REJECTED",
  "_links": {
    "verify": {
      "href": "https://${yourOktaDomain}/api/v1/users/00u15s1KDETTQMQYABRL/factors/opfh52xcuft3J4uZc0g3/verify",
      "hints": {
        "allow": [
          "POST"
        ]
      }
    },
    "factor": {
      "href": "https://${yourOktaDomain}/api/v1/users/00u15s1KDETTQMQYABRL/factors/opfh52xcuft3J4uZc0g3",
      "hints": {
        "allow": [
          "GET",
          "DELETE"
        ]
      }
    }
  }
}"""

# Factors API, "Poll for verify transaction completion", Response example (timeout).
POLL_TIMEOUT = POLL_REJECTED.replace('"REJECTED"', '"TIMEOUT"')

# okta-auth-js test/support/xhr/error-throttle.js: status 429.
RATE_LIMITED = """{
    "errorCode": "E0000047",
    "errorSummary": "API call exceeded rate limit due to too many requests.",
    "errorLink": "E0000047",
    "errorId": "oaetdtoG383SIGVNZ0UKgtRug",
    "errorCauses": [
    ]
  }"""
# Rate Limits page, "Check your rate limits with Okta's rate limit headers" (its example is
# a 200; a 429 carries the same three headers with nothing remaining).
RATE_LIMIT_HEADERS = {
    "X-Rate-Limit-Limit": "10000",
    "X-Rate-Limit-Remaining": "9999",
    "X-Rate-Limit-Reset": "1516307596",
}

# Factors API, "Verify an SMS Factor challenge": Okta's full error object (a 403 refusal).
INVALID_PASSCODE = """{
  "errorCode": "E0000068",
  "errorSummary": "Invalid Passcode/Answer",
  "errorLink": "E0000068",
  "errorId": "oaei_IfXcpnTHit_YEKGInpFw",
  "errorCauses": [
    {
      "errorSummary": "Your passcode doesn't match our records. Please try again."
    }
  ]
}"""


def render(
    example: str,
    domain: str,
    *,
    user_id: str = USER_ID,
    factor_id: str = FACTOR_ID,
    transaction_id: str | None = None,
) -> Any:
    """The example as JSON, on ``domain`` (host[:port]) and with the given ids in place of the
    documented ones (``transaction_id`` replaces both documented transaction ids)."""
    text = example.replace(DOMAIN, domain)
    text = text.replace(USER_ID, user_id).replace(FACTOR_ID, factor_id)
    if transaction_id is not None:
        for documented in (TRANSACTION_ID, DOTTED_TRANSACTION_ID, "verificationTransactionId"):
            text = text.replace(documented, transaction_id)
    return json.loads(text)
