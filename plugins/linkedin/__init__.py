"""The built-in linkedin plugin; its connector and sandbox register here once they land."""
