"""`synth prompts list|show`: the bundled prompt templates and system messages."""

from __future__ import annotations

import typer

from ._common import app, tell

prompts_app = typer.Typer(no_args_is_help=True, help="List and preview the bundled prompt templates.")
app.add_typer(prompts_app, name="prompts")


@prompts_app.command("list")
def prompts_list() -> None:
    """Names of the prompt templates and system messages."""
    from ..prompts import system_messages, template_names

    for name in template_names():
        tell(name)
    for message in system_messages():
        tell(f"system:{message.id}")


@prompts_app.command("show")
def prompts_show(name: str) -> None:
    """Print a template (or system:ID) as shipped."""
    from ..prompts import system_message, template_text

    tell(system_message(name.split(":", 1)[1]).text if name.startswith("system:") else template_text(name))
