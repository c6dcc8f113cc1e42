"""Where a sandbox's control API may send webhooks: its gateway, or the one URL it was given."""

from __future__ import annotations

from dataclasses import dataclass

from yarl import URL

from .problems import ControlInputError


class TargetRefused(Exception):
    """The control API was asked to send a webhook somewhere it may not (answered 403)."""


@dataclass(frozen=True, slots=True)
class WebhookTargets:
    """Mounted in a gateway, any URL below the gateway's base URL; standalone, one URL only.

    Without this bound, ``POST /_control/webhooks`` would fetch any URL and hand back the body:
    a read proxy into whatever network the sandbox's host can reach.
    """

    base: URL
    exact: bool

    @classmethod
    def below(cls, base_url: str) -> WebhookTargets:
        """URLs of the gateway at ``base_url`` (its origin, under its path)."""
        return cls(http_url("base_url", base_url), exact=False)

    @classmethod
    def only(cls, url: str) -> WebhookTargets:
        """Exactly ``url`` (``gateway sandbox --webhook-target``)."""
        return cls(http_url("webhook_target", url), exact=True)

    def resolve(self, url: URL | None) -> URL:
        """The URL to send to: ``url``, or standalone the one URL when none is given.

        :raises ControlInputError: mounted, and no ``url`` was given.
        :raises TargetRefused: ``url`` is not where this sandbox may send.
        """
        if url is None:
            if self.exact:
                return self.base
            raise ControlInputError("target", "must be a non-empty string")
        if self.exact:
            if url != self.base:
                raise TargetRefused(f"this sandbox sends webhooks only to {self.base}")
            return url
        base_path = self.base.path.rstrip("/") + "/"
        if url.origin() != self.base.origin() or not (url.path + "/").startswith(base_path):
            raise TargetRefused(
                f"this sandbox sends webhooks only to the gateway it is mounted in ({self.base})"
            )
        return url


def http_url(field: str, value: str) -> URL:
    """``value`` as an absolute http(s) URL; :raises ControlInputError: naming ``field``."""
    url = URL(value)
    if url.scheme not in ("http", "https") or not url.host:
        raise ControlInputError(field, "must be an absolute http(s) URL")
    return url
