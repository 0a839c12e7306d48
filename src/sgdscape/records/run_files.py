"""A run's files: ``run.npz`` (named arrays) and ``config.toml`` (its :class:`RunConfig`).

:func:`save` writes both into a folder, committed together; :func:`load` reads them back,
every array checked against :func:`run_schema` first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from sgdscape.core.landscape import Landscape
from sgdscape.core.problems import Dataset
from sgdscape.core.train import Trajectory
from sgdscape.errors import SgdscapeError
from sgdscape.io import Schema, Spec, atomic_path, output_set, published, read_archive
from sgdscape.records.config import RunConfig, load_config
from sgdscape.records.curvature import (
    MAP_SPECS,
    curvature_arrays,
    curvature_from_arrays,
    curvature_specs,
    map_arrays,
    map_from_arrays,
)
from sgdscape.records.run import RunResult

TRAJECTORY_ARRAYS = {
    "iterates": "iterates",
    "grads": "grads",
    "full_grads": "full_grads",
    "batch_indices": "batch_indices",
    "batch_loss": "batch_loss",
    "risk_along_path": "risk",
    "lr": "lr",
    "final": "final",
    "final_risk": "final_risk",
    "diverged_step": "diverged_step",
}

#: trajectory arrays a run may leave out (not recorded)
OPTIONAL_TRAJECTORY_ARRAYS = frozenset({"full_grads", "risk_along_path", "final_risk"})


def trajectory_arrays(trajectory: Trajectory, prefix: str = "") -> dict[str, np.ndarray]:
    """A trajectory's arrays under their ``run.npz`` names, each key prefixed with ``prefix``."""
    arrays = {
        prefix + key: getattr(trajectory, attribute) for key, attribute in TRAJECTORY_ARRAYS.items()
    }
    return {key: np.asarray(value) for key, value in arrays.items() if value is not None}


def result_arrays(result: RunResult) -> dict[str, np.ndarray]:
    """The named arrays of ``run.npz``; compare variant ``i`` has keys ``compare{i}_<name>``."""
    surface = result.landscape
    arrays = {
        "x": result.data.x.numpy(),
        "y": result.data.y.numpy(),
        "w1": surface.w1,
        "w2": surface.w2,
        "risk": surface.risk,
        **trajectory_arrays(result.trajectory),
    }
    if surface.sample_loss is not None:
        arrays["sample_loss"] = surface.sample_loss
    for i, other in enumerate(result.others, start=1):
        arrays.update(trajectory_arrays(other, prefix=f"compare{i}_"))
    for i, record in enumerate(result.curvatures):
        arrays.update(curvature_arrays(record, prefix=f"compare{i}_" if i else ""))
    if result.curvature_map is not None:
        arrays.update(map_arrays(result.curvature_map))
    return {key: np.asarray(value) for key, value in arrays.items()}


def prepare_out_dir(out: str | Path) -> Path:
    """Create ``out`` if needed; refuse an existing file."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SgdscapeError(
            f"--out {str(out)!r} is an existing file, not a directory; choose another path."
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SgdscapeError(f"cannot create output directory {str(out)!r}: {error}.") from None
    return out


def save_config(config: RunConfig, path: str | Path) -> Path:
    """Write ``config`` as TOML, atomically."""
    path = Path(path)
    with atomic_path(path) as temporary:
        temporary.write_bytes(tomli_w.dumps(config.to_dict()).encode())
    return path


def write_run_files(result: RunResult, folder: str | Path) -> list[str]:
    """Write ``run.npz`` and ``config.toml`` into ``folder`` (a stage: plain writes)."""
    folder = Path(folder)
    with (folder / "run.npz").open("wb") as handle:
        arrays: dict[str, Any] = result_arrays(result)  # (stubs: a value could be allow_pickle)
        np.savez_compressed(handle, **arrays)
    (folder / "config.toml").write_bytes(tomli_w.dumps(result.config.to_dict()).encode())
    return ["run.npz", "config.toml"]


def save(result: RunResult, out: str | Path) -> list[Path]:
    """Write ``run.npz`` and ``config.toml`` into the directory ``out``, committed together.

    Both files replace the previous run's together (:func:`sgdscape.io.output_set`):
    a kill at any moment leaves the old pair or the new pair, never one of each.
    """
    out = prepare_out_dir(out)
    with output_set(out, "run") as stage:
        names = write_run_files(result, stage)
    return [out / name for name in names]


def run_schema(n_params: int, n_compare: int = 0) -> Schema:
    """The arrays of ``run.npz`` for a model of ``n_params`` and ``n_compare`` variants.

    Symbols: ``n`` samples, ``G1``/``G2`` grid sizes, ``p`` parameters; each trajectory has
    its own ``T`` steps, ``B`` minibatch size and optional ``K`` inits.
    """
    arrays: dict[str, Spec] = {
        "x": Spec(("n", "d"), finite=True),
        "y": Spec(("n", "e"), finite=True),
        "w1": Spec(("G1",), finite=True, increasing=True),
        "w2": Spec(("G2",), finite=True, increasing=True),
        "risk": Spec(("G2", "G1")),
        "sample_loss": Spec(("n", "G2", "G1"), required=False),
    }
    for i in range(n_compare + 1):
        prefix = f"compare{i}_" if i else ""
        k, t, b = f"{prefix}K?", f"{prefix}T", f"{prefix}B"
        specs = {  # in binding order: T from lr, K from iterates
            "lr": Spec((t,), dtype="float64", finite=True),
            "iterates": Spec((k, t, "p")),
            "grads": Spec((k, t, "p")),
            "full_grads": Spec((k, t, "p"), required=False),
            "batch_indices": Spec((t, b), "int", "int64", low=-1, high="n", rows_used=True),
            "batch_loss": Spec((k, t)),
            "risk_along_path": Spec((k, t), required=False),
            "final": Spec((k, "p")),
            "final_risk": Spec((k,), required=False),
            "diverged_step": Spec((k,), "int", "int64", low=-1, high=t),
        }
        arrays.update({prefix + name: spec for name, spec in specs.items()})
        arrays.update(curvature_specs(prefix, k, t))
    arrays.update(MAP_SPECS)
    return Schema(
        "saved run",
        arrays,
        {"G1": 2, "G2": 2},
        "`sgdscape run --out DIR`",
        "a network's network.npz is read with --view, a run's directory with --from",
        fixed={"p": n_params},
    )


def load(path: str | Path) -> RunResult:
    """Load a saved run from its directory (or its ``run.npz``; ``config.toml`` sits beside it)."""
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    npz = published(directory, "run.npz") if path.is_dir() or path.name == "run.npz" else path
    if not npz.is_file():
        raise SgdscapeError(f"no saved run at {str(npz)!r}; expected run.npz and config.toml.")
    config = load_config(published(directory, "config.toml"))
    model = config.model_spec
    arrays = read_archive(
        npz,
        run_schema(model.n_params, len(config.compare)),
    )
    import torch

    data = Dataset(torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"]), "saved")
    surface = Landscape(
        arrays["w1"],
        arrays["w2"],
        arrays["risk"],
        arrays.get("sample_loss"),
        config.plane(model).labels,
        config.loss_name,
        model.name,
        config.plane(model),
    )

    def trajectory(prefix: str) -> Trajectory:
        # the schema checked that every array but OPTIONAL_TRAJECTORY_ARRAYS is present
        values: dict[str, Any] = {
            attribute: arrays.get(prefix + key) for key, attribute in TRAJECTORY_ARRAYS.items()
        }
        return Trajectory(**values, param_names=model.param_names)

    main = trajectory("")
    others = tuple(trajectory(f"compare{i}_") for i in range(1, len(config.compare) + 1))
    records = []
    for i, one in enumerate((main, *others)):
        record = curvature_from_arrays(
            arrays,
            f"compare{i}_" if i else "",
            iterates=one.iterates,
            lr=one.lr,
            param_names=model.param_names,
        )
        if record is not None:
            records.append(record)
    return RunResult(
        config,
        data,
        surface,
        main,
        others,
        curvatures=tuple(records) if len(records) == 1 + len(others) else (),
        curvature_map=map_from_arrays(arrays, config.plane(model).labels),
    )
