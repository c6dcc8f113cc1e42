"""The built-in mailchimp plugin; its connector and sandbox register here once they land."""
