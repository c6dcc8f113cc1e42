"""A campaign report (``GET /reports/{id}``) on the unified metrics.

The mapping (a metric with no email counterpart is ``None``, never 0):

| unified | Mailchimp report field | why |
| --- | --- | --- |
| impressions | ``opens.opens_total`` | every time the email was opened (viewed) |
| reach | ``opens.unique_opens`` | recipients who opened it at least once |
| views | None | no video views in an email |
| likes | None | |
| comments | None | |
| shares | ``forwards.forwards_count`` | forwards to a friend |
| saves | None | |
| clicks | ``clicks.clicks_total`` | every click on a link |
| engagement | ``clicks.unique_subscriber_clicks`` | recipients who clicked at least once |

Emails sent, bounces, unsubscribes, abuse reports and the open and click rates (fractions 0 to 1)
have no unified name: they stay in ``raw``, which is the whole report.
"""

from __future__ import annotations

from typing import Any

from gateway import Analytics


def _number(report: dict[str, Any], group: str, key: str) -> int | float | None:
    section = report.get(group)
    value = section.get(key) if isinstance(section, dict) else None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def analytics(report: dict[str, Any]) -> Analytics:
    metrics: dict[str, int | float | None] = {
        "impressions": _number(report, "opens", "opens_total"),
        "reach": _number(report, "opens", "unique_opens"),
        "views": None,
        "likes": None,
        "comments": None,
        "shares": _number(report, "forwards", "forwards_count"),
        "saves": None,
        "clicks": _number(report, "clicks", "clicks_total"),
        "engagement": _number(report, "clicks", "unique_subscriber_clicks"),
    }
    return Analytics(metrics=metrics, raw=report)
