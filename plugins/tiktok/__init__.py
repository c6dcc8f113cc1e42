"""The built-in tiktok plugin; its connector and sandbox register here once they land."""
