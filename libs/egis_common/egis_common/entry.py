"""A service's command line: `--help` and `--version` answered before anything starts.

A service takes its settings from the environment only, so its command line has
nothing else to say; an argument it does not know is a mistake said in one line
(exit 2), never a start that dies later on a missing broker or database.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from importlib.metadata import version

from pydantic import BaseModel
from pydantic_settings import BaseSettings

# A service's exit codes, listed by its --help.
EXIT_FAILED = 1  # start-up failed for another reason (the traceback is in its log), or it failed while running
EXIT_USAGE = 2  # an argument it does not take
EXIT_UNAVAILABLE = 3  # Kafka or its database did not answer at start, or refused its login
EXIT_CODES = (
    "exit codes:\n"
    "  0  stopped by SIGINT or SIGTERM, or --help/--version answered\n"
    f"  {EXIT_FAILED}  start-up failed for any other reason (the traceback is in its log), or it failed running\n"
    f"  {EXIT_USAGE}  an argument it does not take\n"
    f"  {EXIT_UNAVAILABLE}  Kafka or its database did not answer at start, or refused its login"
)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def setting_names(settings: type[BaseSettings]) -> list[str]:
    """The environment variables `settings` reads; a nested model as `NAME__*` (pydantic-settings' delimiter)."""
    prefix = settings.model_config.get("env_prefix", "")
    nested = settings.model_config.get("env_nested_delimiter")
    names = []
    for name, field in settings.model_fields.items():
        variable = f"{prefix}{name}".upper()
        kind = field.annotation
        if nested and isinstance(kind, type) and issubclass(kind, BaseModel):
            variable += f"{nested}*"
        names.append(variable)
    return sorted(names)


def answer_arguments(
    program: str,
    summary: str,
    settings: type[BaseSettings],
    readme: str,
    argv: Sequence[str] | None = None,
) -> None:
    """Print the usage or the version and exit 0; exit 2 on any other argument; return when there is none.

    `program` is the service's distribution too (its console script's name), whose version is printed."""
    variables = textwrap.fill(", ".join(setting_names(settings)), width=78, initial_indent="  ", subsequent_indent="  ")
    parser = _OneLineParser(
        prog=program,
        description=f"{summary}\n\nIt takes no arguments: every setting comes from the environment.",
        epilog=(
            f"settings (environment variables):\n{variables}\n\n{EXIT_CODES}\n\n"
            f"What each one means, and how to run it: {readme}"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{program} {version(program)}")
    parser.parse_args(sys.argv[1:] if argv is None else argv)
