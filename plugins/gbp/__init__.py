"""The built-in gbp plugin; its connector and sandbox register here once they land."""
