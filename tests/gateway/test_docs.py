"""The docs cannot drift: every hook is documented, the generated references are current, and
the README points only at files of the repository."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from gateway import docgen
from gateway.cli import cli
from gateway.docgen import __main__ as entry
from gateway.docgen.commands import render_cli
from gateway.docgen.markdown import anchor
from gateway.docgen.served import served_document
from gateway.plugins import new_manager
from gateway.webhooks.outbox import EVENTS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "plugins.md"


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


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return docgen.render()


@pytest.mark.parametrize("name", ["api.md", "cli.md"])
def test_generated_reference_is_current(rendered, name):
    committed = (ROOT / "docs" / name).read_text(encoding="utf-8")
    assert committed == rendered[name], (
        f"docs/{name} is stale: run `.venv/bin/{docgen.REGENERATE}` in the repository and "
        "commit the result"
    )


def test_api_reference_has_every_route_and_schema(rendered):
    document = served_document()
    text = rendered["api.md"]
    for path, methods in document["paths"].items():
        for method in methods:
            assert f"#### `{method.upper()} {path}`" in text
    for name in document["components"]["schemas"]:
        assert f"\n### {name}\n" in text
    # The plugins' routes are in it too (the document is that of a gateway with them).
    assert "/api/plugins/mailchimp/audiences/{accountId}/members" in text


def test_api_reference_explains_every_core_client_event(rendered):
    for event in EVENTS:
        assert f"| `{event}` |" in rendered["api.md"], f"{event} is not in api_guide.md's table"


def test_api_reference_links_resolve_to_its_sections(rendered):
    text = rendered["api.md"]
    headings = {anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
    targets = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert targets and targets <= headings, targets - headings


def test_cli_reference_has_a_new_command_without_being_told():
    @click.group()
    def root():
        """The root."""

    @root.group()
    def tenants():
        """Tenants."""

    @tenants.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def tenants_list(as_json):
        """List the tenants."""

    text = render_cli(root, "<!-- header -->")
    assert "[`gateway tenants list`](#gateway-tenants-list) | List the tenants. |" in text
    assert "## `gateway tenants list`" in text
    assert "Usage: gateway tenants list [OPTIONS]" in text and "--json  Print JSON." in text


def test_cli_reference_has_every_command(rendered):
    def paths(group: click.Group, prefix: str):
        for name, command in group.commands.items():
            yield f"{prefix} {name}"
            if isinstance(command, click.Group):
                yield from paths(command, f"{prefix} {name}")

    for path in paths(cli, "gateway"):
        assert f"## `{path}`" in rendered["cli.md"]


def test_regenerating_rewrites_stale_files_and_check_tells(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(entry, "DOCS", tmp_path)
    (tmp_path / "api.md").write_text("old\n")
    assert entry.main(["--check"]) == 1
    assert (tmp_path / "api.md").read_text() == "old\n"
    assert "docs/api.md stale" in capsys.readouterr().err
    assert entry.main([]) == 0
    assert entry.main(["--check"]) == 0
    assert (tmp_path / "cli.md").read_text().startswith("# Command-line reference")


def test_readme_links_only_to_files_of_the_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "../" not in readme
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert "docs/api.md" in links and "docs/cli.md" in links
    for link in links:
        assert not re.match(r"^[a-z]+:", link), f"README links outside the repository: {link}"
        target = link.split("#", 1)[0]
        assert not target or (ROOT / target).is_file(), f"README links to a missing {link}"
