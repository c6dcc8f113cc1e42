"""Sealing and opening secrets with AES-GCM under a key ring, bound to their row."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import ConfigError, GatewayError

_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
NONCE_BYTES = 12
# The id of the key sandbox mode generates: it lies in a file under `data_dir`, so production
# refuses it (and any `dev-…` id) rather than seal real tokens with it.
DEV_KEY_ID = "dev"


class VaultError(GatewayError):
    """A sealed value could not be opened: unknown key id, or tampered or moved ciphertext."""

    code = "vault_error"


class Secret:
    """A decrypted secret whose repr and str never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Sealed:
    """A ciphertext and the id of the key that sealed it (stored side by side)."""

    key_id: str
    ciphertext: bytes


def generate_key() -> str:
    """A new 256-bit key, base64-encoded, for the `kid:key` form the config takes."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def is_development_key(key_id: str) -> bool:
    """Whether ``key_id`` marks a development key (sandbox mode's generated one)."""
    return key_id == DEV_KEY_ID or key_id.startswith(f"{DEV_KEY_ID}-")


def parse_key(entry: str, *, where: str = "vault.keys") -> tuple[str, bytes]:
    kid, sep, encoded = entry.partition(":")
    if not sep or not _KEY_ID.match(kid):
        raise ConfigError(
            where, "each key must look like 'kid:base64key' (kid: letters, digits, -_)"
        )
    try:
        # Accept both alphabets: `openssl rand -base64 32` and our urlsafe `generate-key`.
        text = encoded.strip().replace("-", "+").replace("_", "/")
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(where, f"key {kid!r} is not valid base64") from None
    if len(raw) != 32:
        raise ConfigError(where, f"key {kid!r} must be 32 bytes (256 bits), got {len(raw)}")
    return kid, raw


class Vault:
    """Seals with the first key of the ring; opens with whichever key a value names.

    The associated data binds each ciphertext to the row and field it belongs to, so a
    ciphertext copied to another row fails to open.
    """

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ConfigError("vault.keys", "the key ring is empty")
        ids = [kid for kid, _ in keys]
        if len(set(ids)) != len(ids):
            raise ConfigError("vault.keys", "key ids must be unique")
        self._ring = {kid: AESGCM(raw) for kid, raw in keys}
        self.active_key_id = keys[0][0]
        # The oldest key outlives rotations longest: what derived values are keyed on.
        self._derivation_key = keys[-1][1]

    @classmethod
    def from_entries(cls, entries: list[str] | tuple[str, ...]) -> Vault:
        return cls([parse_key(entry) for entry in entries])

    @property
    def key_ids(self) -> list[str]:
        return list(self._ring)

    def seal(self, plaintext: str | bytes, *, bound_to: str) -> Sealed:
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        nonce = os.urandom(NONCE_BYTES)
        aead = self._ring[self.active_key_id]
        return Sealed(self.active_key_id, nonce + aead.encrypt(nonce, data, bound_to.encode()))

    def open(self, sealed: Sealed, *, bound_to: str) -> Secret:
        aead = self._ring.get(sealed.key_id)
        if aead is None:
            raise VaultError(f"no key {sealed.key_id!r} in the vault's key ring")
        nonce, body = sealed.ciphertext[:NONCE_BYTES], sealed.ciphertext[NONCE_BYTES:]
        try:
            return Secret(aead.decrypt(nonce, body, bound_to.encode()).decode())
        except InvalidTag:
            raise VaultError("sealed value does not open here (tampered, or moved)") from None

    def derive(self, purpose: str) -> str:
        """A stable, unguessable value for ``purpose`` (a key for pagination cursors, OAuth states).

        HMAC-SHA256 under the oldest key of the ring, so it survives adding a key; it changes
        when that key is retired. Only for short-lived values, then: nothing lasting (a URL given
        to a platform) may be derived here, and one value serves every tenant, so never a
        credential a tenant may see.
        """
        digest = hmac.new(self._derivation_key, purpose.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode()

    def needs_rotation(self, sealed: Sealed) -> bool:
        return sealed.key_id != self.active_key_id

    def reseal(self, sealed: Sealed, *, bound_to: str) -> Sealed:
        return self.seal(self.open(sealed, bound_to=bound_to).reveal(), bound_to=bound_to)


def dev_key_entry(path: Path) -> tuple[str, bool]:
    """The sandbox-mode development key at ``path``, created on first use; (entry, created)."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = f"{DEV_KEY_ID}:{generate_key()}"
    # Owner-only from the first byte: the key is never world-readable, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(entry + "\n")
    return entry, True
