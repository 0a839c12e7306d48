"""Grid chunks on a Ray cluster: actors hold the model and data once, chunks are retried.

Generic over what is evaluated: every actor builds its evaluator once from a factory put
in the object store (``ray.put``: the model and data travel once per node, not per
chunk) and then answers ``evaluate_plane(directions, coords, per_sample)`` for chunks.
An actor that dies mid-run is replaced and its chunk resubmitted, so the result is
complete and identical. Finished chunks go through the plan's ``save`` (checkpoints).

Ray is optional (``pip install 'sgdscape[ray]'``) and imported only here, lazily.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from sgdscape.errors import SgdscapeError

log = logging.getLogger(__name__)


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SgdscapeError(
            "backend 'ray' needs Ray: pip install 'sgdscape[ray]' (or use the local backend)."
        ) from None
    return ray


class _Worker:
    """A Ray actor body: one evaluator (model + data on its device), many chunks."""

    def __init__(self, factory: Callable[..., Any], directions: Any, use_gpu: bool) -> None:
        import torch

        device = "cuda" if use_gpu and torch.cuda.is_available() else "cpu"
        self.evaluator = factory(device=device)
        self.directions = directions

    def evaluate(self, coords: Any, per_sample: bool) -> tuple[Any, Any]:
        risk, samples = self.evaluator.evaluate_plane(
            self.directions, coords, per_sample=per_sample
        )
        return risk.cpu().numpy(), None if samples is None else samples.cpu().numpy()

    def pid(self) -> int:
        return os.getpid()


#: the HTTP/2 client connection preface and an empty SETTINGS frame (RFC 9113, section 3.4)
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
HTTP2_SETTINGS = 4


def speaks_grpc(connection: socket.socket, timeout: float) -> bool:
    """Whether the peer of ``connection`` answers as an HTTP/2 (gRPC) server.

    Ray's GCS and its Ray Client server are gRPC servers: sent the HTTP/2 preface, they
    reply with a SETTINGS frame (a 9-byte header whose type byte, the fourth, is 4).
    A server of another protocol replies otherwise, closes, or stays silent; each
    gives ``False`` within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    header = b""
    try:
        connection.settimeout(timeout)
        connection.sendall(HTTP2_PREFACE)
        while len(header) < 9:  # a peer trickling bytes still gets `timeout` in all
            connection.settimeout(max(deadline - time.monotonic(), 1e-3))
            chunk = connection.recv(9 - len(header))
            if not chunk:
                return False
            header += chunk
    except OSError:  # a timeout, or a reset
        return False
    return header[3] == HTTP2_SETTINGS


class RayBackend:
    """Evaluate grid chunks on Ray actors.

    Args:
        address: ``None``/``"auto"``/``"local"``: join the running Ray (``RAY_ADDRESS`` or an
            already initialised session) or start a local one; anything else is a cluster
            address for ``ray.init(address=...)``.
        num_actors: actors to start (default: one per GPU when the cluster has GPUs,
            else one per CPU, at most one per chunk).
        max_failures: actor deaths tolerated in one run before giving up.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_actors: int | None = None,
        max_failures: int = 8,
    ) -> None:
        self.address = address
        self.num_actors = num_actors
        self.max_failures = int(max_failures)
        self.actors: list[Any] = []
        self.failures = 0

    def check_address(self, timeout: float = 5.0) -> None:
        """Fail fast, with one clear line, when an explicit ``HOST:PORT`` (or
        ``ray://HOST:PORT``) address is not a Ray cluster; ``ray.init`` itself would wait
        minutes.

        The address must accept a TCP connection within ``timeout`` seconds and then speak
        gRPC, as Ray's GCS and Ray Client servers do: it must answer the HTTP/2 connection
        preface with a SETTINGS frame within another ``timeout`` seconds (see
        :func:`speaks_grpc`). So a wrong address fails within ``2 * timeout`` seconds.
        """
        if self.address in (None, "auto", "local"):
            return
        text = str(self.address).removeprefix("ray://")
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit():
            raise SgdscapeError(
                f"Ray address {self.address!r} is not HOST:PORT; use e.g. 10.0.0.5:6379, "
                "ray://10.0.0.5:10001 or auto."
            )
        try:
            connection = socket.create_connection((host, int(port)), timeout=timeout)
        except (OSError, OverflowError) as error:
            reason = getattr(error, "strerror", None) or error
            raise SgdscapeError(
                f"cannot reach Ray at {self.address!r} ({reason}); check the "
                "address, or use --ray auto for a local Ray."
            ) from None
        with connection:
            if not speaks_grpc(connection, timeout):
                raise SgdscapeError(
                    f"{self.address!r} accepts connections but is not a Ray cluster (no gRPC "
                    f"handshake within {timeout:g} s); give the address of Ray's GCS (printed "
                    "by `ray start --head`, port 6379 by default) or ray://HOST:10001, or use "
                    "--ray auto for a local Ray."
                )

    def _init(self) -> Any:
        ray = import_ray()
        if not ray.is_initialized():
            self.check_address()
            if self.address in (None, "auto", "local"):
                address = os.environ.get("RAY_ADDRESS") or None
            else:
                address = self.address
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise SgdscapeError(f"cannot start or join Ray at {address!r}: {error}") from None
        return ray

    def run(
        self,
        factory: Callable[..., Any],
        directions: Any,
        plan: Any,
        done: dict[int, tuple[Any, Any]],
        progress: Callable[[int, int], None] | None,
    ) -> dict[int, tuple[Any, Any]]:
        """Compute the chunks of ``plan`` missing from ``done`` on Ray actors."""
        ray = self._init()
        from ray.exceptions import RayActorError

        total = len(plan.starts)
        queue = collections.deque(i for i in range(total) if i not in done)
        if not queue:
            return done
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        use_gpu = gpus > 0
        wanted = self.num_actors or (gpus if use_gpu else max(1, int(resources.get("CPU", 1))))
        wanted = max(1, min(int(wanted), len(queue)))
        options: dict[str, Any] = {"max_restarts": 0, "num_cpus": 1}
        if use_gpu:
            options = {"max_restarts": 0, "num_gpus": 1, "num_cpus": 0}
        actor_class = ray.remote(_Worker).options(**options)
        factory_ref = ray.put(factory)  # model and data into the object store once
        directions_ref = ray.put(directions)

        def spawn() -> Any:
            actor = actor_class.remote(factory_ref, directions_ref, use_gpu)
            self.actors.append(actor)
            return actor

        idle = [spawn() for _ in range(wanted)]
        pending: dict[Any, tuple[int, Any]] = {}
        self.failures = 0
        try:
            while queue or pending:
                while queue and idle:
                    actor = idle.pop()
                    index = queue.popleft()
                    ref = actor.evaluate.remote(plan.chunk_coords(index), plan.per_sample)
                    pending[ref] = (index, actor)
                ready, _ = ray.wait(list(pending), num_returns=1)
                index, actor = pending.pop(ready[0])
                try:
                    risk, samples = ray.get(ready[0])
                except RayActorError:
                    self.failures += 1
                    log.warning("a Ray actor died; chunk %d goes to another actor", index)
                    if self.failures > self.max_failures:
                        raise SgdscapeError(
                            f"{self.failures} Ray actors died in one run (more than "
                            f"max_failures={self.max_failures}); giving up."
                        ) from None
                    queue.appendleft(index)
                    if actor in self.actors:
                        self.actors.remove(actor)
                    # its other in-flight chunks fail on their own and are requeued then
                    idle = [a for a in idle if a is not actor]
                    idle.append(spawn())
                    continue
                plan.save(index, risk, samples)
                done[index] = (risk, samples)
                idle.append(actor)
                if progress is not None:
                    progress(len(done), total)
        finally:
            for actor in self.actors:
                ray.kill(actor)
            self.actors = []
        return done
