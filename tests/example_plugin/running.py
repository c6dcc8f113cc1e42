"""A real gateway (sandbox mode, example plugin) on a real socket, with the Example Social
sandbox mounted in it: what the connector tests call the connector against."""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway_example_plugin.social_connector import ExampleSocialConnector

from gateway import Credentials, Secret
from gateway.host import Gateway

from .flows import Social

PLATFORM = "examplesocial"


@dataclasses.dataclass
class Running:
    gateway: Gateway
    connector: ExampleSocialConnector
    social: Social

    async def fault(self, **fault: Any) -> None:
        reply = await self.social.control("POST", "faults", fault)
        assert reply.status == 201, reply.body

    async def journal(self) -> list[dict[str, Any]]:
        return (await self.social.control("GET", "journal")).body["requests"]

    async def state(self) -> dict[str, Any]:
        return (await self.social.control("GET", "state")).body


def credentials(access_token: str | None, **fields: Any) -> Credentials:
    return Credentials(
        connection_id="conn_test",
        platform=PLATFORM,
        access_token=Secret(access_token) if access_token is not None else None,
        **fields,
    )
