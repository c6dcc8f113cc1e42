"""The shared OAuth 2.0 client flow: authorization URLs, PKCE, code exchange, refresh, state."""
