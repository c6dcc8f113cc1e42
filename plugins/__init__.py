"""The built-in platform plugins; each is registered through the `gateway.plugins` entry points."""
