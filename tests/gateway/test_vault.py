"""The vault: authenticated encryption bound to its row, key ids, rotation."""

from __future__ import annotations

import base64

import pytest

from gateway.errors import ConfigError
from gateway.vault import Sealed, Secret, Vault, VaultError, dev_key_entry, generate_key, parse_key


def ring(*ids: str) -> Vault:
    return Vault.from_entries([f"{kid}:{generate_key()}" for kid in ids])


def test_seal_and_open_round_trip_without_plaintext_in_ciphertext():
    vault = ring("k1")
    sealed = vault.seal("tok-EAAB-very-secret", bound_to="sealed_secrets:sec_1:access")
    assert b"tok-EAAB" not in sealed.ciphertext
    assert sealed.key_id == "k1"
    assert (
        vault.open(sealed, bound_to="sealed_secrets:sec_1:access").reveal()
        == "tok-EAAB-very-secret"
    )


def test_sealing_twice_gives_different_ciphertexts():
    vault = ring("k1")
    a = vault.seal("same", bound_to="x")
    b = vault.seal("same", bound_to="x")
    assert a.ciphertext != b.ciphertext


def test_ciphertext_moved_to_another_row_does_not_open():
    vault = ring("k1")
    sealed = vault.seal("secret", bound_to="sealed_secrets:sec_1:access")
    with pytest.raises(VaultError, match="does not open"):
        vault.open(sealed, bound_to="sealed_secrets:sec_2:access")


def test_tampered_ciphertext_does_not_open():
    vault = ring("k1")
    sealed = vault.seal("secret", bound_to="row")
    flipped = bytearray(sealed.ciphertext)
    flipped[-1] ^= 1
    with pytest.raises(VaultError):
        vault.open(Sealed(sealed.key_id, bytes(flipped)), bound_to="row")


def test_old_keys_keep_opening_after_a_new_key_is_added():
    old_entry = f"k1:{generate_key()}"
    old = Vault.from_entries([old_entry])
    sealed = old.seal("secret", bound_to="row")
    new = Vault.from_entries([f"k2:{generate_key()}", old_entry])
    assert new.active_key_id == "k2"
    assert new.open(sealed, bound_to="row").reveal() == "secret"
    assert new.needs_rotation(sealed)
    resealed = new.reseal(sealed, bound_to="row")
    assert resealed.key_id == "k2" and not new.needs_rotation(resealed)


def test_removed_key_is_reported_by_id():
    sealed = ring("k1").seal("secret", bound_to="row")
    with pytest.raises(VaultError, match="no key 'k1'"):
        ring("k2").open(sealed, bound_to="row")


def test_secret_never_shows_its_value():
    secret = Secret("tok-123")
    assert "tok-123" not in repr(secret) and "tok-123" not in str(secret)
    assert "tok-123" not in f"{secret}"
    assert secret.reveal() == "tok-123"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("nocolon", "kid:base64key"),
        # A fixed key: the ids of parametrized tests must be the same in every pytest worker.
        ("bad id!:" + base64.urlsafe_b64encode(bytes(32)).decode(), "kid:base64key"),
        ("k1:" + base64.urlsafe_b64encode(b"short").decode(), "must be 32 bytes"),
        ("k1:***", "not valid base64"),
    ],
)
def test_bad_keys_are_config_errors(entry, problem):
    with pytest.raises(ConfigError, match=problem):
        parse_key(entry)


def test_duplicate_key_ids_are_refused():
    with pytest.raises(ConfigError, match="unique"):
        Vault.from_entries([f"k1:{generate_key()}", f"k1:{generate_key()}"])


def test_dev_key_is_created_once_owner_only(tmp_path):
    path = tmp_path / "var" / "vault.key"
    first, created = dev_key_entry(path)
    again, created_again = dev_key_entry(path)
    assert created and not created_again and first == again
    assert path.stat().st_mode & 0o777 == 0o600
    Vault.from_entries([first])  # it is a usable key


async def test_no_token_plaintext_reaches_the_database_file_or_the_logs(tmp_path, make_gateway):
    import io
    import json

    import structlog

    from gateway.db.repositories import SecretRepository
    from gateway.settings import LoggingSettings
    from gateway.telemetry import configure_logging

    plaintexts = [f"EAAG-token-{i}-{'z' * 20}" for i in range(5)]
    stream = io.StringIO()
    configure_logging(LoggingSettings(format="json", level="debug"), stream=stream)
    try:
        gateway = make_gateway()
        await gateway.open_storage()
        log = structlog.get_logger("test")
        async with gateway.session() as session, session.begin():
            repo = SecretRepository(session, gateway.vault)
            for value in plaintexts:
                row = await repo.store(value, purpose="access_token", tenant_id=None)
                # Careless code that logs a token under a secret-looking name is redacted too.
                log.info("stored", access_token=value, refresh_token=value, secret_id=row.id)
                log.info("calling", url=f"https://graph.example.test/me?access_token={value}")
                log.info("header", authorization=f"Bearer {value}")
        await gateway.close_storage()
    finally:
        configure_logging(LoggingSettings())
    written = b"".join(p.read_bytes() for p in tmp_path.glob("gateway.db*"))
    logged = stream.getvalue()
    assert written and logged
    for value in plaintexts:
        assert value.encode() not in written
        assert value not in logged
    assert all(json.loads(line)["event"] for line in logged.splitlines())
