"""The plugin-author docs list every hook, so a new hook cannot ship undocumented."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.plugins import new_manager

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def hook_signatures() -> list[str]:
    manager = new_manager()
    return sorted(
        f"{name}({', '.join(caller.spec.argnames)})"
        for name, caller in vars(manager.hook).items()
        if not name.startswith("_") and caller.spec is not None
    )


def test_there_are_hooks_to_document():
    assert len(hook_signatures()) >= 9


@pytest.mark.parametrize("signature", hook_signatures())
def test_hook_is_documented(signature):
    assert f"### `{signature}`" in DOCS.read_text(), (
        f"docs/plugins.md does not document {signature}"
    )


def test_every_hook_has_a_docstring():
    manager = new_manager()
    for name, caller in vars(manager.hook).items():
        if not name.startswith("_"):
            assert (caller.spec.function.__doc__ or "").strip(), name
