"""Grid points in chunks: the plan (with its on-disk checkpoints) and the local run of it.

A :class:`ChunkPlan` splits a slice's grid coordinates into chunks; :func:`evaluate_chunks` evaluates
the missing ones in this process (:func:`sgdscape.networks.ray_backend.evaluate_chunks_on_ray` on a Ray
cluster), saving each finished chunk atomically so that a rerun resumes from them.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sgdscape.errors import SgdscapeError
from sgdscape.io import Schema, Spec, read_archive, write_atomic
from sgdscape.networks.directions import Directions
from sgdscape.networks.evaluation import Evaluator

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
#: the finished chunks by index: the risk ``(C,)`` at the chunk's ``C`` points and the
#: per-sample losses ``(n, C)`` (``None`` without ``per_sample``)
ChunkResults = dict[int, tuple[np.ndarray, np.ndarray | None]]
#: where chunks run: this process, or a Ray cluster (:mod:`sgdscape.networks.ray_backend`)
BACKENDS = ("local", "ray")


@dataclass
class ChunkPlan:
    """Grid points split into chunks, with an optional checkpoint directory."""

    coords: torch.Tensor
    chunk: int
    checkpoint_dir: Path | None = None
    fingerprint: str = ""
    per_sample: bool = False
    starts: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.starts = list(range(0, self.coords.shape[0], self.chunk))

    def chunk_coords(self, index: int) -> torch.Tensor:
        start = self.starts[index]
        return self.coords[start : start + self.chunk]

    def path(self, index: int) -> Path | None:
        if self.checkpoint_dir is None:
            return None
        return self.checkpoint_dir / f"chunk_{index:05d}.npz"

    def prepare(self) -> ChunkResults:
        """Create the checkpoint directory; return the chunks already finished there."""
        if self.checkpoint_dir is None:
            return {}
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        manifest = self.checkpoint_dir / "manifest.json"
        wanted = {
            "fingerprint": self.fingerprint,
            "chunk": self.chunk,
            "points": int(self.coords.shape[0]),
            "per_sample": self.per_sample,
        }
        if manifest.exists():
            try:
                found = json.loads(manifest.read_text())
            except (OSError, UnicodeDecodeError, ValueError, RecursionError):
                raise SgdscapeError(
                    f"checkpoint directory {str(self.checkpoint_dir)!r} holds an unreadable "
                    "manifest.json; use an empty directory."
                ) from None
            if found != wanted:
                raise SgdscapeError(
                    f"checkpoint directory {str(self.checkpoint_dir)!r} holds chunks of another "
                    "slice (different model, data, directions, grid, chunk size, precision or per-sample "
                    "setting); use an "
                    "empty directory."
                )
        else:
            write_atomic(manifest, json.dumps(wanted).encode())
        done = {}
        for index in range(len(self.starts)):
            path = self.path(index)
            if path is not None and path.exists():
                chunk = self._load_chunk(index, path)
                if chunk is not None:
                    done[index] = chunk
        return done

    def _load_chunk(self, index: int, path: Path) -> tuple[np.ndarray, np.ndarray | None] | None:
        """A finished chunk, checked like any archive; ``None`` (recompute it) if damaged."""
        schema = Schema(
            "checkpoint chunk",
            {"risk": Spec(("c",)), "samples": Spec(("n", "c"), required=self.per_sample)},
            {},
            "a run with --checkpoint",
            "it is recomputed",
            fixed={"c": int(self.chunk_coords(index).shape[0])},
        )
        try:
            arrays = read_archive(path, schema)
        except SgdscapeError as error:
            log.warning("%s; recomputing that chunk.", str(error).rstrip("."))
            return None
        return arrays["risk"], arrays.get("samples")

    def save(self, index: int, risk: np.ndarray, samples: np.ndarray | None) -> None:
        path = self.path(index)
        if path is None:
            return
        # Any: np.savez's stubs would take a dict[str, ndarray] value as its allow_pickle flag
        arrays: dict[str, Any] = {"risk": risk}
        if samples is not None:
            arrays["samples"] = samples
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_atomic(path, buffer.getvalue())


def chunk_fingerprint(evaluator: Evaluator, directions: Directions, coords: torch.Tensor) -> str:
    digest = hashlib.sha256(directions.fingerprint().encode())
    digest.update(coords.numpy().tobytes())
    digest.update(evaluator.x.cpu().numpy().tobytes()[: 1 << 20])
    digest.update(str((evaluator.n, tuple(evaluator.x.shape))).encode())
    if evaluator.precision != "float32":  # float32 keeps the fingerprints it always had
        digest.update(evaluator.precision.encode())
    return digest.hexdigest()[:16]


def evaluate_chunks(
    evaluator: Evaluator,
    directions: Directions,
    plan: ChunkPlan,
    done: ChunkResults,
    progress: Progress | None,
) -> ChunkResults:
    """Compute the missing chunks in this process, checkpointing each one."""
    total = len(plan.starts)
    for index in range(total):
        if index in done:
            continue
        risk, samples = evaluator.evaluate_plane(
            directions, plan.chunk_coords(index), per_sample=plan.per_sample
        )
        result = (risk.cpu().numpy(), None if samples is None else samples.cpu().numpy())
        plan.save(index, *result)
        done[index] = result
        if progress is not None:
            progress(len(done), total)
    return done
