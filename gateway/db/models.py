"""ORM rows of the core tables: tenants, API keys and sealed secrets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class TenantRow(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the key's random part: keys are high-entropy, so a slow hash buys nothing.
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class SealedSecretRow(Base):
    """Every secret the gateway keeps (tokens, API keys of platforms), sealed by the vault.

    One table for all of them, so that `gateway vault rotate` has one place to walk.
    """

    __tablename__ = "sealed_secrets"
    __table_args__ = (Index("ix_sealed_secrets_key_id", "key_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True, default=None
    )
    purpose: Mapped[str] = mapped_column(String(60))
    key_id: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    # Bumped on every write: rotation and refresh compare-and-set on it.
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def associated_data(self) -> str:
        """What the ciphertext is bound to: this row and what it is for."""
        return f"sealed_secrets:{self.id}:{self.purpose}"
