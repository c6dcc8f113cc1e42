"""The HTTP face of the gateway: app factory, routes, middlewares and the OpenAPI document."""
