"""`--ray ADDRESS` connects or fails within its timeout (issue 14).

A port that accepts connections but is not Ray (silent, an HTTP server, an echo, one that
hangs up) is refused in one line within 15 s, before any data is loaded or any training
runs; Ray's own GCS passes the same check.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import threading
import time

import pytest
from typer.testing import CliRunner

from sgdscape.core.distributed import RayBackend
from sgdscape.errors import SgdscapeError
from sgdscape.surfaces.cli import app

runner = CliRunner()


def _silent(connection: socket.socket) -> None:
    connection.recv(1024)
    time.sleep(30)


def _http(connection: socket.socket) -> None:
    connection.recv(1024)
    connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def _echo(connection: socket.socket) -> None:
    connection.sendall(connection.recv(1024))
    time.sleep(30)


def _hang_up(connection: socket.socket) -> None:
    pass


def _trickle(connection: socket.socket) -> None:
    """One byte every second: never a whole frame header within the timeout."""
    for _ in range(30):
        connection.sendall(b"\x00")
        time.sleep(1)


@pytest.fixture(params=[_silent, _http, _echo, _hang_up, _trickle], ids=lambda f: f.__name__)
def not_ray(request):
    """A plain TCP server on a free loopback port that answers as ``request.param`` says."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with connection, contextlib.suppress(OSError):
                request.param(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    server.close()


def test_a_port_that_is_not_ray_is_one_line_within_15_s(not_ray, tmp_path):
    out = tmp_path / "n"
    began = time.monotonic()
    result = runner.invoke(app, ["network", "--ray", not_ray, "--out", str(out), "-q"])
    seconds = time.monotonic() - began
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert f"'{not_ray}' accepts connections but is not a Ray cluster" in lines[0]
    assert seconds < 15, f"took {seconds:.1f} s"
    assert not out.exists()  # refused before training, not after


def test_the_python_api_refuses_it_too(not_ray):
    began = time.monotonic()
    with pytest.raises(SgdscapeError, match="not a Ray cluster"):
        RayBackend(address=f"ray://{not_ray}").check_address(timeout=2.0)
    assert time.monotonic() - began < 2 * 2.0 + 1


@pytest.mark.parametrize(
    ("address", "named"),
    [
        ("nohost", "is not HOST:PORT"),
        ("127.0.0.1:99999", "cannot reach Ray at '127.0.0.1:99999'"),
        ("127.0.0.1:1", "cannot reach Ray at '127.0.0.1:1'"),
    ],
)
def test_unreachable_or_malformed_addresses(address, named):
    with pytest.raises(SgdscapeError, match=named):
        RayBackend(address=address).check_address(timeout=2.0)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs the ray extra")
def test_rays_own_gcs_passes_the_check():
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        address = ray.get_runtime_context().gcs_address
        RayBackend(address=address).check_address(timeout=5.0)
    finally:
        if started:
            ray.shutdown()
