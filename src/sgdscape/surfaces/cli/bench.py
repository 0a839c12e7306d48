"""``sgdscape bench``: the benchmark suite as a table (and JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sgdscape.errors import SgdscapeError
from sgdscape.surfaces.cli.root import app


@app.command()
def bench(
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the table as JSON here.")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="A smoke test of a few seconds: small sizes, eager rows only (no compiled "
            "kernels, no fresh-process memory row).",
        ),
    ] = False,
    repeats: Annotated[int, typer.Option(help="Best of N.", min=1, max=1000)] = 3,
    threads: Annotated[
        int | None, typer.Option(help="torch CPU threads [torch's default].", min=1, max=4096)
    ] = None,
) -> None:
    """Measure landscapes and trajectories against the seed's loops and the copy bandwidth."""
    import torch

    from sgdscape.core.devices import resolve_device
    from sgdscape.surfaces.bench import machine, print_table, suite, write_json

    if json_path is not None and json_path.is_dir():
        raise SgdscapeError(f"--json {str(json_path)!r} is a directory; give a file name.")
    resolve_device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    rows = suite(device, quick=quick, repeats=repeats)
    typer.echo(f"machine: {machine()}")
    print_table(rows, typer.echo)
    if json_path is not None:
        write_json(str(json_path), rows, {"benchmark": "suite", "quick": quick})
        typer.echo(f"wrote {json_path}")
