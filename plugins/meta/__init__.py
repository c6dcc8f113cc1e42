"""The built-in meta plugin; its connector and sandbox register here once they land."""
