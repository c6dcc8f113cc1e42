"""The dashboard in a real headless browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.db.models import PublishJobRow
from gateway.host import Gateway
from gateway.web.app import create_app

from ...conftest import ROOT, settings_for
from ...support import free_port
from .seed import SOCIAL, seed

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "var" / "dashboard.png"

async_api = pytest.importorskip(
    "playwright.async_api", reason="the playwright package is not installed (pip install '.[test]')"
)


@pytest.fixture
def chromium() -> str:
    found = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    if not found:
        pytest.skip(
            "Debian's chromium is not installed (apt-get install -y chromium; .ci/run does)"
        )
    return found


@pytest.fixture
async def served(aiohttp_server, tmp_path, example_plugin):
    port = free_port()
    gateway = Gateway.from_settings(
        settings_for(tmp_path, server={"port": port}, connections={"background": False}),
        extra_plugins=[("example", example_plugin)],
        entry_points=False,
    )
    await aiohttp_server(create_app(gateway), port=port)
    return f"http://127.0.0.1:{port}", gateway, await seed(gateway)


async def test_sign_in_read_the_figures_and_replay_a_dead_job(served, chromium):
    base, gateway, data = served
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            await page.goto(f"{base}/dashboard")
            await page.fill("#apiKey", data.key_a.api_key)
            await page.click("button[type=submit]")
            await page.wait_for_selector("h1:text('Gateway health')")

            # The cookie is out of the script's reach.
            assert "gateway_session" not in await page.evaluate("document.cookie")
            social = page.locator(f'#platforms tr[data-platform="{SOCIAL}"]')
            assert await social.locator('[data-field="p95"]').inner_text() == "1900 ms"
            assert await social.locator('[data-field="success"]').inner_text() == "90.9%"
            assert await social.locator('[data-field="dlq"]').inner_text() == "3"
            tokens = await page.locator("#tokens tbody tr").all_inner_texts()
            assert any("expiring" in row.lower() and "72" in row for row in tokens)
            errors = await page.locator("#errors tbody").inner_text()
            assert "HTTP 503" in errors and "timeout" in errors
            assert await page.locator("#dlq button[data-replay]").count() == 3

            job_id = data.dead_ids[0]
            await page.click(f'button[data-replay="{job_id}"]')
            await page.wait_for_selector(f'#dlq tr[data-job="{job_id}"]', state="detached")
            # The figures refresh from /api/health without a reload.
            await async_api.expect(social.locator('[data-field="dlq"]')).to_have_text("2")
            assert await page.locator("#dlq button[data-replay]").count() == 2
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

            await page.click("text=Sign out")
            await page.wait_for_selector("#apiKey")
            status = await page.evaluate("fetch('/api/health').then(r => r.status)")
            assert status == 401
        finally:
            await browser.close()
    async with gateway.session() as session:
        replayed = await session.scalar(select(PublishJobRow).where(PublishJobRow.id == job_id))
    assert replayed.status == "queued"
