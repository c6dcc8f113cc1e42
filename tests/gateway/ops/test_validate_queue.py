"""The validation's queue check, in process on Meta's sandbox: a slow clock, a failure mid-check."""

from __future__ import annotations

from gateway import clock
from gateway.ops import validate as validation
from gateway.ops.local import ApiError, LocalGateway

from ...conftest import settings_for


class SlowClock(clock.Clock):
    """Each reading a second after the last, as if every step of the check took that long."""

    def __init__(self) -> None:
        super().__init__(clock.current().offset)
        self.readings = 0

    def timestamp(self) -> float:
        self.readings += 1
        return super().timestamp() + self.readings


def checks_of(report: dict) -> dict[str, dict]:
    return {c["name"]: c for p in report["platforms"] for c in p["checks"]}


async def test_the_repeated_request_is_the_same_however_long_the_first_took(tmp_path, monkeypatch):
    # The body is stamped with the time: a second stamp, a second later, changed it, and the
    # repeat with the same Idempotency-Key was refused as a different request (a flaky 409).
    # Only the check's own readings are slowed: the gateway behind it keeps real time.
    slow = SlowClock()
    monkeypatch.setattr(validation, "clock", slow)
    async with LocalGateway(settings_for(tmp_path)) as local:
        report = await validation.validate(local, ["meta"])
    queue = checks_of(report)["queue"]
    assert queue["status"] == "pass", queue
    assert slow.readings >= 3


async def test_a_queue_check_that_fails_takes_back_its_scheduled_post(tmp_path, monkeypatch):
    async with LocalGateway(settings_for(tmp_path)) as local:
        submitted = 0
        publish_somewhere = local.publish_somewhere

        async def refused_the_second_time(*args, **kwargs):
            nonlocal submitted
            submitted += 1
            if submitted == 2:
                raise ApiError(503, {"detail": "the gateway is briefly unavailable"})
            return await publish_somewhere(*args, **kwargs)

        run = validation.PlatformRun("meta")
        await validation._connect(local, run)
        await validation._accounts(local, run)
        monkeypatch.setattr(local, "publish_somewhere", refused_the_second_time)
        result = await validation._timed(
            "queue", lambda: validation._queue(local, run, publish=True)
        )
        assert result.status == "fail"
        assert "briefly unavailable" in result.detail
        jobs = (await local.api("GET", "/api/jobs"))["data"]
        # Left scheduled, it would have been posted for real an hour later on a live platform.
        assert [job["status"] for job in jobs] == ["cancelled"]
