"""docs/cli.md: every command of the `gateway` click tree, with the help it prints."""

from __future__ import annotations

from collections.abc import Iterator

import click

from .markdown import anchor, cell, table

# Fixed, so that the help text wraps the same on every machine.
WIDTH = 100
INTRO = (
    "Every command prints the help below with `--help`. Exit codes: 0 success, 1 failure, "
    "2 bad usage or configuration; an error is one line on stderr, never a traceback. "
    "Commands that read the configuration take `--config FILE` (else `$GATEWAY_CONFIG`, "
    "else `config/gateway.toml`)."
)


def render_cli(root: click.Group, header: str, name: str = "gateway") -> str:
    commands = list(_walk(root, name, None))
    summary = table(
        ("command", "what"),
        [
            (
                f"[`{ctx.command_path}`](#{anchor(ctx.command_path)})",
                cell(ctx.command.get_short_help_str(WIDTH)),
            )
            for ctx in commands[1:]
        ],
    )
    sections = ["# Command-line reference", header, INTRO, summary]
    for ctx in commands:
        help_text = ctx.command.get_help(ctx).rstrip()
        sections.append(f"## `{ctx.command_path}`\n\n```text\n{help_text}\n```")
    return "\n\n".join(sections) + "\n"


def _walk(
    command: click.Command, name: str, parent: click.Context | None
) -> Iterator[click.Context]:
    """The command and everything under it, in the order `--help` lists them."""
    # The command's own context settings, as `gateway … --help` applies them: click keeps the
    # help option it makes first, so a context without them (no `-h`) would print the options
    # one way or the other depending on which ran first in the process.
    settings = {**command.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    ctx = click.Context(command, info_name=name, parent=parent, **settings)
    yield ctx
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, sub_name, ctx)
