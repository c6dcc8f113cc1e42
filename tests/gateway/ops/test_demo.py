"""`gateway demo` on the default config with the example plugin: every step, in one run."""

from __future__ import annotations

from ...support import gateway_env, run_gateway


async def test_the_demo_connects_publishes_and_replays(tmp_path, installed_example):
    # cwd has no config file: the embedded defaults.
    code, out, err = await run_gateway(
        "demo", env=gateway_env(tmp_path / "var", installed_example), cwd=tmp_path
    )
    assert code == 0, out + err
    lines = [line.split() for line in out.splitlines()]
    connected = {line[0]: line for line in lines if line[4:5] == ["healthy"]}
    # The built-in plugins' sandboxes and the installed third-party one, alike.
    assert set(connected) == {"example", "examplesocial", "meta", "mailchimp"}
    for platform in ("meta", "mailchimp"):
        [row] = [line for line in lines if line[:1] == [platform] and "→" in line]
        assert "published" in row and row[-1] != "-", row  # a remote post id
    assert connected["examplesocial"][1:3] == ["OAuth", "2.0"]
    [published] = [line for line in lines if line[:1] == ["examplesocial"] and "→" in line]
    assert published[-2:] == ["published", "post_1"] and published[2] == "queued"
    [failed] = [line for line in lines if line[:1] == ["failed"]]
    assert failed[-2:] == ["dead", "non_retryable"]
    [replayed] = [line for line in lines if line[:1] == ["replayed"]]
    assert replayed[-2:] == ["published", "post_2"] and replayed[1] == failed[1]
    assert any(line[:1] == ["examplesocial"] and "null" in line for line in lines)  # analytics
    assert "5. Health (GET /api/health" in out
    assert not (tmp_path / "var" / "gateway.db").exists()  # the operator's database is untouched
    assert "\r" not in err and "Traceback" not in err


async def test_the_demo_runs_on_the_built_in_plugins_alone(tmp_path):
    """A fresh clone has no third-party plugin: the README's tour starts here."""
    empty_site = tmp_path / "site"
    empty_site.mkdir()
    code, out, err = await run_gateway(
        "demo", env=gateway_env(tmp_path / "var", empty_site), cwd=tmp_path
    )
    assert code == 0, out + err
    lines = [line.split() for line in out.splitlines()]
    for platform in ("meta", "mailchimp"):
        [row] = [line for line in lines if line[:1] == [platform] and "→" in line]
        assert "published" in row, row
    [replayed] = [line for line in lines if line[:1] == ["replayed"]]
    assert "published" in replayed, out


async def test_the_demo_presents_the_control_token_when_one_is_set(tmp_path):
    empty_site = tmp_path / "site"
    empty_site.mkdir()
    env = gateway_env(tmp_path / "var", empty_site, sandbox_control_token="ctl-s3cret")
    code, out, err = await run_gateway("demo", env=env, cwd=tmp_path)
    assert code == 0, out + err
    [replayed] = [line.split() for line in out.splitlines() if line.split()[:1] == ["replayed"]]
    assert "published" in replayed, out
