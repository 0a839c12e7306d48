"""The typer app every command registers on, and the one-line error handling around it.

Every bad input ends with one line ``sgdscape: error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import gc
import logging
import re
import sys
from collections.abc import Sequence
from typing import Annotated, Any, Protocol, cast

import typer
from typer.core import TyperGroup

from sgdscape.errors import SgdscapeError


def _click_exception() -> type[Exception]:
    """typer >= 0.24 vendors click: its ClickException, found through a public subclass."""
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException" and issubclass(cls, Exception):
            return cls
    raise ImportError("typer.BadParameter no longer derives from click's ClickException")


_CLICK_EXCEPTION = _click_exception()


class _ClickError(Protocol):
    """What the CLI reads of a ClickException."""

    exit_code: int

    def format_message(self) -> str: ...


class OneLineErrors(TyperGroup):
    """A command group whose usage errors and :class:`SgdscapeError` print one line, exit 2."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not windows_expand_args:  # passed on only when given (click < 8.0.1 lacks it)
            extra["windows_expand_args"] = False
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            fail("interrupted.", code=130)
        except _CLICK_EXCEPTION as caught:
            error = cast(_ClickError, caught)
            if type(error).__name__ == "NoArgsIsHelpError":  # bare `sgdscape`: show the help
                typer.echo(error.format_message())
                sys.exit(0)
            fail(one_line(error.format_message()), code=error.exit_code)
        except SgdscapeError as error:
            fail(one_line(str(error)))
        except OSError as error:
            fail(one_line(f"{error.strerror or error}: {error.filename or ''}".rstrip(": ")))
        if isinstance(result, int) and result != 0:
            sys.exit(result)
        return result


def one_line(message: str) -> str:
    """``message`` with every run of whitespace (newlines too) folded into one space."""
    return re.sub(r"\s+", " ", message).strip()


def fail(message: str, code: int = 2) -> None:
    """Print ``sgdscape: error: message`` on stderr and exit with ``code``."""
    typer.echo(f"sgdscape: error: {message}", err=True)
    sys.exit(code)


app = typer.Typer(
    cls=OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="See how stochastic gradient methods move on loss landscapes.",
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version as package_version

        typer.echo(f"sgdscape {package_version('sgdscape')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """See how stochastic gradient methods move on loss landscapes."""


def main() -> None:
    """Console-script entry point.

    When the command is done the process only has to end, so every object is frozen
    (:func:`gc.freeze`): the interpreter's last collections then skip them instead of
    walking all that torch and matplotlib made (about 0.5 s of CPU after ``sgdscape run``).
    Files, ``atexit`` handlers and output streams are closed and flushed as usual.
    """
    logging.basicConfig(level=logging.WARNING, format="sgdscape: %(message)s")
    try:
        app()
    finally:
        gc.freeze()
