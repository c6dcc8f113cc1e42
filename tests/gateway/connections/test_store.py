"""The refresh schedule each policy implies; a refresh token the platform did not resend is kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.connections.store import merged_with_stored, schedule
from gateway.credentials import Credentials
from gateway.types import RefreshKind, RefreshPolicy, TokenSet
from gateway.vault import Secret

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_a_refresh_token_platform_refreshes_ahead_of_expiry():
    policy = RefreshPolicy(kind=RefreshKind.REFRESH_TOKEN, refresh_ahead=timedelta(minutes=10))
    refresh_at, reconnect_by = schedule(NOW + timedelta(hours=1), policy, NOW)
    assert refresh_at == NOW + timedelta(minutes=50) and reconnect_by is None


def test_a_long_lived_exchange_acts_on_day_53_of_60():
    policy = RefreshPolicy(
        kind=RefreshKind.EXCHANGE, refresh_after=timedelta(days=53), refresh_ahead=timedelta(days=1)
    )
    refresh_at, _ = schedule(NOW + timedelta(days=60), policy, NOW)
    assert refresh_at == NOW + timedelta(days=53)


def test_a_token_that_cannot_be_renewed_has_a_reconnect_date():
    refresh_at, reconnect_by = schedule(NOW + timedelta(days=60), RefreshPolicy(), NOW)
    assert refresh_at is None and reconnect_by == NOW + timedelta(days=60)
    assert schedule(None, RefreshPolicy(), NOW) == (None, None)  # API keys, Mailchimp tokens


def test_a_stored_refresh_token_is_kept_when_none_comes_back():
    stored = Credentials(
        connection_id="conn_1",
        platform="x",
        access_token=Secret("old-access"),
        refresh_token=Secret("kept-refresh"),
        refresh_expires_at=NOW + timedelta(days=300),
    )
    merged = merged_with_stored(TokenSet(access_token="new-access"), stored)
    assert merged.access_token == "new-access" and merged.refresh_token == "kept-refresh"
    assert merged.refresh_expires_at == NOW + timedelta(days=300)
    rotated = merged_with_stored(TokenSet(access_token="a", refresh_token="new-refresh"), stored)
    assert rotated.refresh_token == "new-refresh"
