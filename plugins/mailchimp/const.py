"""Mailchimp's URLs, account kind and limits."""

from __future__ import annotations

import re

LOGIN = "https://login.mailchimp.com"
AUTHORIZE_URL = f"{LOGIN}/oauth2/authorize"
TOKEN_URL = f"{LOGIN}/oauth2/token"
METADATA_URL = f"{LOGIN}/oauth2/metadata"
API_HOST = "{dc}.api.mailchimp.com"
BATCH_HOST = "mailchimp-api-batch.s3.amazonaws.com"
HOSTS = (API_HOST, "login.mailchimp.com", BATCH_HOST)
API_VERSION = "3.0"

AUDIENCE = "mailchimp_audience"
# Mailchimp answers a key's 11th simultaneous request with 429.
MAX_CONNECTIONS = 10
SUBJECT_MAX = 150
PREVIEW_MAX = 150
FROM_NAME_MAX = 100
CAMPAIGN_TITLE_MAX = 100
TEST_EMAILS_MAX = 10
BATCH_MEMBERS_MAX = 500
# Mailchimp sends scheduled campaigns on the quarter hour only.
SCHEDULE_STEP_MINUTES = 15
FREE_PLAN = "forever_free"

API_KEY = re.compile(r"^[0-9a-f]{32}-(?P<dc>[a-z]{2}\d{1,3})$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def api_base(dc: str) -> str:
    return f"https://{dc}.api.mailchimp.com/{API_VERSION}"
