"""The typer app every command registers on, and the one-line error handling around it.

Every bad input ends with one line ``sgdscape: error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import re
import sys
import threading
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
    """Console-script entry point: run the command, then end the process quickly.

    See :func:`end_process` for how the process ends once the command is done.
    """
    logging.basicConfig(level=logging.WARNING, format="sgdscape: %(message)s")
    try:
        app()
    except SystemExit as done:
        end_process(done.code)
    except BaseException:  # a traceback: the interpreter ends it as usual
        gc.freeze()
        raise
    end_process(0)


def end_process(code: object) -> None:
    """End the process with exit status ``code`` once a command has finished.

    Every output is already committed (written whole and renamed into place) when a command
    returns, so all that is left is what the interpreter does at exit: ``atexit`` handlers
    (logging, Ray, temporary files) and flushing stdout and stderr, Python's and C's, which
    are done here; and then tearing down every module one object at a time, about 0.2-0.3 s
    of CPU after ``sgdscape run`` for the hundreds of thousands of objects torch and
    matplotlib made, which :func:`os._exit` skips. That quick end is taken only when it
    loses nothing: an integer status (or none) and no other Python thread running (the
    native kernels' idle workers are ended first). Anything else (a message as the status,
    a thread still at work) leaves through :class:`SystemExit` as usual, with every object
    frozen (:func:`gc.freeze`) so that the interpreter's last collections skip them.
    """
    native = sys.modules.get("sgdscape.core.native")
    if native is not None:  # its idle worker threads are no work in progress
        native.release_threads()
    if not (code is None or isinstance(code, int)) or threading.active_count() > 1:
        gc.freeze()
        raise SystemExit(code)
    atexit._run_exitfuncs()
    status = code or 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (| head): as the interpreter reports it
            status = status or 120
    if "ctypes" in sys.modules and os.name == "posix":  # what a C library printed through
        import ctypes  # stdio, which exit() would flush (fflush(NULL): every stream)

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).fflush(None)
    os._exit(status)
