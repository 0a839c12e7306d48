"""A corpus of crafted bad archives: runs (``run.npz`` + ``config.toml``) and network views.

``python tests/archive_corpus.py DIR`` writes the corpus into ``DIR`` (one folder per case)
and lists it; :func:`build` does the same for the tests. Each case is a valid archive
(written by sgdscape itself) broken in one way: the format (truncated, not a zip, a renamed
``.npy``, damaged data, odd zip features), the sizes (a header or a zip entry declaring
far more than the cap, a real deflate bomb), the names (missing, extra), the dtypes (text,
bytes, Python objects, complex, bool, structured), the shapes (against the other arrays and
the config), empty axes, and the values (NaN and infinite coordinates, unsorted axes,
indices out of range, a network view's ``info`` that is not the expected JSON object).

Every case names a fragment the one-line error must contain (the array, or what is wrong).
"""

from __future__ import annotations

import io
import shutil
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: bytes a deflate bomb decompresses to: more than the 1 GiB cap
BOMB_BYTES = 1_200 * 2**20


@dataclass(frozen=True)
class Case:
    """One crafted archive: ``kind`` is ``"run"`` or ``"view"``; ``path`` is what loaders get
    (a run's folder, a view's ``.npz``); ``expect`` is a fragment of the error."""

    name: str
    kind: str
    path: Path
    expect: str

    @property
    def archive(self) -> Path:
        """The ``.npz`` file itself."""
        return self.path / "run.npz" if self.kind == "run" else self.path


# --------------------------------------------------------------------------- valid bases


def make_base_run(folder: Path) -> Path:
    """A small valid run (20 samples, a 10 x 10 grid, 20 steps) saved in ``folder``."""
    import sgdscape

    result = sgdscape.run(sgdscape.RunConfig(samples=20, grid=10, batch_size=2))
    sgdscape.save(result, folder)
    return folder


def make_base_view(path: Path) -> Path:
    """A small valid network view (a 2-4-2 MLP on 60 moons, 3 steps, a 5 x 5 plane)."""
    import torch
    from torch import nn

    from sgdscape.networks.examples import two_moons
    from sgdscape.networks.recording import record_training, save_view, stochastic_view

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))
    recording = record_training(
        model, nn.CrossEntropyLoss(), two_moons(n=60, seed=1), lr=0.5, batch_size=20, epochs=1
    )
    return save_view(stochastic_view(recording, grid=5), path)


def arrays_of(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a valid archive (read with numpy, an independent reader)."""
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


# --------------------------------------------------------------------------- writers


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as a ``.npy`` file (objects pickled, as a careless writer would)."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=True)
    return buffer.getvalue()


def npy_header(header: str, version: tuple[int, int] = (1, 0)) -> bytes:
    """A ``.npy`` preamble with the literal header text ``header`` (may lie or be invalid)."""
    text = header.encode("latin1")
    length_size = 2 if version == (1, 0) else 4
    pad = (-(6 + 2 + length_size + len(text) + 1)) % 64
    text += b" " * pad + b"\n"
    length = struct.pack("<H" if length_size == 2 else "<I", len(text))
    return b"\x93NUMPY" + bytes(version) + length + text


def write_members(
    path: Path, members: dict[str, bytes] | list[tuple[str, bytes]], compression: int = 8
) -> None:
    """A zip of raw ``members`` (names given in full, e.g. ``risk.npy``)."""
    items = members.items() if isinstance(members, dict) else members
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, payload in items:
            archive.writestr(name, payload)


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A zip of ``NAME.npy`` members, deflated, objects allowed."""
    write_members(path, {f"{name}.npy": npy_bytes(array) for name, array in arrays.items()})


def patch_central(path: Path, member: str, offset: int, fmt: str, value: int) -> None:
    """Overwrite a field of ``member``'s central-directory entry (and local header)."""
    data = bytearray(path.read_bytes())
    encoded = member.encode()
    start = 0
    while (start := data.find(b"PK\x01\x02", start)) >= 0:
        name_length = struct.unpack_from("<H", data, start + 28)[0]
        if data[start + 46 : start + 46 + name_length] == encoded:
            struct.pack_into(fmt, data, start + offset, value)
            if offset == 8:  # flag bits also sit in the local header
                local = struct.unpack_from("<I", data, start + 42)[0]
                struct.pack_into(fmt, data, local + 6, value)
        start += 4
    path.write_bytes(bytes(data))


def write_bomb(path: Path, arrays: dict[str, np.ndarray], name: str) -> None:
    """``arrays`` with ``name`` replaced by ~1.2 GB of float64 zeros, deflated to ~1 MB."""
    side = int((BOMB_BYTES / 8) ** 0.5)
    header = npy_header(f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({side}, {side}), }}")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for key, array in arrays.items():
            if key != name:
                archive.writestr(f"{key}.npy", npy_bytes(array))
        with archive.open(f"{name}.npy", "w", force_zip64=True) as stream:
            stream.write(header)
            zeros = bytes(2**24)
            left = side * side * 8
            while left:
                chunk = min(left, len(zeros))
                stream.write(zeros[:chunk])
                left -= chunk


# --------------------------------------------------------------------------- the corpus


Mutation = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def _set(**changes: object) -> Mutation:
    def mutate(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = dict(arrays)
        for key, value in changes.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value(out) if callable(value) else np.asarray(value)
        return out

    return mutate


def _with(key: str, change: Callable[[np.ndarray], np.ndarray]) -> Mutation:
    return _set(**{key: lambda a: change(a[key])})


def _nan_at(index: int) -> Callable[[np.ndarray], np.ndarray]:
    def change(array: np.ndarray) -> np.ndarray:
        array = array.astype(array.dtype, copy=True)
        array.flat[index] = np.nan
        return array

    return change


def _index_at(value: int, where: tuple[int, int] = (0, 0)) -> Callable[[np.ndarray], np.ndarray]:
    def change(array: np.ndarray) -> np.ndarray:
        array = array.copy()
        array[where] = value
        return array

    return change


RUN_MUTATIONS: dict[str, tuple[Mutation, str]] = {
    "missing_risk": (_set(risk=None), "lacks risk"),
    "missing_iterates": (_set(iterates=None), "lacks iterates"),
    "missing_w1_w2": (_set(w1=None, w2=None), "lacks w1, w2"),
    "extra_junk": (_set(junk=np.zeros(3)), "'junk'"),
    "compare_without_config": (_set(compare1_lr=np.ones(20)), "'compare1_lr'"),
    "risk_strings": (_set(risk=np.full((10, 10), "abc")), "'risk' has dtype <U3"),
    "risk_bytes": (_set(risk=np.full((10, 10), b"abc")), "'risk' has dtype |S3"),
    "risk_objects": (_set(risk=np.full((10, 10), None, dtype=object)), "Python objects"),
    "iterates_objects": (_set(iterates=np.array([{"a": 1}], dtype=object)), "Python objects"),
    "risk_complex": (_with("risk", lambda a: a.astype(np.complex128)), "'risk' has dtype"),
    "risk_bool": (_with("risk", lambda a: a > 0), "'risk' has dtype bool"),
    "risk_structured": (
        _set(risk=np.zeros((10, 10), dtype=[("a", "<f4"), ("b", "<f4")])),
        "'risk' has dtype",
    ),
    "batch_indices_float": (_with("batch_indices", lambda a: a.astype(np.float32)), "integers"),
    "lr_subarray": (_set(lr=np.zeros(20, dtype=("<f8", (2,)))), "'lr'"),
    "risk_wrong_width": (_with("risk", lambda a: np.zeros((10, 11), a.dtype)), "'risk'"),
    "risk_1d": (_with("risk", lambda a: a.ravel()), "'risk' has shape (100,)"),
    "risk_3d": (_with("risk", lambda a: a[None]), "'risk' has shape (1, 10, 10)"),
    "w1_2d": (_with("w1", lambda a: a[None]), "'w1' has shape"),
    "sample_loss_wrong_n": (_with("sample_loss", lambda a: a[:5]), "'sample_loss'"),
    "iterates_three_params": (
        _with("iterates", lambda a: np.zeros((a.shape[0], 3), a.dtype)),
        "p = 2",
    ),
    "iterates_fewer_steps": (_with("iterates", lambda a: a[:7]), "'iterates'"),
    "grads_fewer_steps": (_with("grads", lambda a: a[:7]), "'grads'"),
    "batch_indices_more_steps": (
        _with("batch_indices", lambda a: np.concatenate([a, a])),
        "'batch_indices'",
    ),
    "y_fewer_rows": (_with("y", lambda a: a[:3]), "'y'"),
    "final_three_params": (_with("final", lambda a: np.zeros(3, a.dtype)), "'final'"),
    "diverged_step_batched": (_with("diverged_step", lambda a: np.full(4, -1)), "'diverged_step'"),
    "empty_w1": (
        _set(w1=np.zeros(0, np.float32), risk=np.zeros((10, 0), np.float32), sample_loss=None),
        "G1 >= 2",
    ),
    "empty_samples": (
        _set(x=np.zeros((0, 1), np.float32), y=np.zeros((0, 1), np.float32), sample_loss=None),
        "n >= 1",
    ),
    "empty_steps": (
        _set(
            **{
                k: (lambda key: lambda a: a[key][..., :0, :] if a[key].ndim == 2 else a[key][:0])(k)
                for k in ("iterates", "grads", "full_grads", "batch_loss", "risk_along_path", "lr")
            },
            batch_indices=lambda a: a["batch_indices"][:0],
        ),
        "T >= 1",
    ),
    "empty_minibatch": (_with("batch_indices", lambda a: a[:, :0]), "B >= 1"),
    "w1_nan": (_with("w1", _nan_at(3)), "'w1' holds NaN"),
    "w2_inf": (_with("w2", lambda a: np.where(np.arange(a.size) == 9, np.inf, a)), "'w2' holds"),
    "x_nan": (_with("x", _nan_at(0)), "'x' holds NaN"),
    "y_inf": (_with("y", lambda a: np.full_like(a, -np.inf)), "'y' holds"),
    "lr_nan": (_with("lr", _nan_at(5)), "'lr' holds NaN"),
    "w1_beyond_float32": (_with("w1", lambda a: a.astype(np.float64) * 1e39), "'w1' holds"),
    "w1_span_overflows": (
        _with("w1", lambda a: np.linspace(-3e38, 3e38, a.size).astype(np.float32)),
        "'w1' spans 6e+38",
    ),
    "w1_reversed": (_with("w1", lambda a: a[::-1].copy()), "'w1' is not strictly increasing"),
    "w2_repeated": (_with("w2", lambda a: np.zeros_like(a)), "'w2' is not strictly increasing"),
    "batch_index_too_big": (_with("batch_indices", _index_at(20)), "[-1, 20)"),
    "batch_index_huge": (_with("batch_indices", _index_at(2**62)), "[-1, 20)"),
    "batch_index_below_padding": (_with("batch_indices", _index_at(-2)), "[-1, 20)"),
    "batch_row_all_padding": (
        _with("batch_indices", lambda a: np.where(np.arange(a.shape[0])[:, None] == 4, -1, a)),
        "row 4 names no sample",
    ),
    "batch_indices_uint64_huge": (
        _with("batch_indices", lambda a: np.full(a.shape, 2**64 - 1, np.uint64)),
        "'batch_indices'",
    ),
    "diverged_step_out_of_range": (_set(diverged_step=np.int64(20)), "'diverged_step'"),
}


VIEW_MUTATIONS: dict[str, tuple[Mutation, str]] = {
    "missing_info": (_set(info=None), "lacks info"),
    "missing_path": (_set(path=None), "lacks path"),
    "extra_junk": (_set(junk=np.ones(2)), "'junk'"),
    "info_list": (_set(info=np.asarray('["moons", 1]')), "JSON list"),
    "info_number": (_set(info=np.asarray("3.5")), "JSON float"),
    "info_huge": (_set(info=np.asarray("{" + " " * 2**20 + "}")), "bytes of text"),
    "info_not_json": (_set(info=np.asarray("{name: moons")), "'info' is not JSON"),
    "info_deep": (_set(info=np.asarray("[" * 100_000 + "]" * 100_000)), "'info'"),
    "info_numeric_array": (_set(info=np.zeros(())), "'info' has dtype float64"),
    "info_objects": (_set(info=np.asarray({"name": "x"}, dtype=object)), "Python objects"),
    "info_lr_text": (
        _with("info", lambda a: np.asarray(str(a).replace('"lr": 0.5', '"lr": "fast"'))),
        "'lr'",
    ),
    "info_name_number": (
        _with("info", lambda a: np.asarray(str(a).replace('"name": "Sequential"', '"name": 7'))),
        "'name'",
    ),
    "info_without_n_samples": (
        _with("info", lambda a: np.asarray(str(a).replace('"n_samples": 60', '"m": 60'))),
        "'n_samples'",
    ),
    "info_n_samples_bool": (
        _with("info", lambda a: np.asarray(str(a).replace('"n_samples": 60', '"n_samples": true'))),
        "'n_samples'",
    ),
    "labels_three": (_set(labels=np.asarray(["a", "b", "c"])), "'labels' has shape (3,)"),
    "labels_numbers": (_set(labels=np.zeros(2)), "'labels' has dtype float64"),
    "loss_number": (_set(loss=np.float32(1)), "'loss' has dtype"),
    "model_bytes": (_set(model=np.asarray(b"mlp")), "'model' has dtype"),
    "risk_strings": (_set(risk=np.full((5, 5), "x")), "'risk' has dtype <U1"),
    "risk_objects": (_set(risk=np.full((5, 5), 1.0, dtype=object)), "Python objects"),
    "risk_transposed_shape": (_with("risk", lambda a: np.zeros((5, 6), a.dtype)), "'risk'"),
    "path_without_final": (_with("path", lambda a: a[:-1]), "'path'"),
    "path_three_columns": (_with("path", lambda a: np.zeros((a.shape[0], 3), a.dtype)), "'path'"),
    "grads_plane_more_steps": (_with("grads_plane", lambda a: np.concatenate([a, a])), "'grads"),
    "off_plane_short": (_with("off_plane", lambda a: a[:1]), "'off_plane'"),
    "path_risk_long": (_with("path_risk", lambda a: np.concatenate([a, a])), "'path_risk'"),
    "batch_landscapes_fewer": (_with("batch_landscapes", lambda a: a[:1]), "'batch_landscapes'"),
    "explained_variance_three": (_set(explained_variance=np.ones(3)), "'explained_variance'"),
    "steps_out_of_range": (_with("steps", lambda a: a + 10), "'steps'"),
    "steps_negative": (_with("steps", lambda a: a - 5), "'steps'"),
    "steps_unsorted": (_with("steps", lambda a: a[::-1].copy()), "'steps' is not strictly"),
    "steps_float": (_with("steps", lambda a: a.astype(np.float64)), "'steps' has dtype"),
    "empty_steps": (
        _set(
            steps=np.zeros(0, np.int64),
            batch_landscapes=lambda a: a["batch_landscapes"][:0],
        ),
        "S >= 1",
    ),
    "empty_grid": (
        _set(
            w1=np.zeros(0, np.float32),
            risk=lambda a: a["risk"][:, :0],
            batch_landscapes=lambda a: a["batch_landscapes"][:, :, :0],
        ),
        "G1 >= 2",
    ),
    "w2_nan": (_with("w2", _nan_at(2)), "'w2' holds NaN"),
    "w1_decreasing": (_with("w1", lambda a: -a), "'w1' is not strictly increasing"),
    "batch_index_beyond_n_samples": (_with("batch_indices", _index_at(60)), "n_samples = 60"),
    "batch_index_minus_seven": (_with("batch_indices", _index_at(-7)), "'batch_indices'"),
}


def _format_cases(kind: str, base: Path, folder: Path, arrays: dict[str, np.ndarray]) -> dict:
    """Cases that break the file rather than its arrays: name -> (writer(path), fragment)."""
    data = base.read_bytes()
    big = "risk"

    def truncated_half(path: Path) -> None:
        path.write_bytes(data[: len(data) // 2])

    def truncated_tail(path: Path) -> None:
        path.write_bytes(data[:-10])

    def corrupted(path: Path) -> None:  # flip bytes inside the first member's data
        damaged = bytearray(data)
        for i in range(60, 160):
            damaged[i] ^= 0xFF
        path.write_bytes(bytes(damaged))

    def renamed_npy(path: Path) -> None:
        path.write_bytes(npy_bytes(arrays[big]))

    def huge_header(path: Path) -> None:
        members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
        members[f"{big}.npy"] = npy_header(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
        ) + bytes(800)
        write_members(path, members)

    def lying_zip_size(path: Path) -> None:
        write_arrays(path, arrays)
        patch_central(path, f"{big}.npy", 24, "<I", 0xFFFFFFF0)

    def header_larger_than_member(path: Path) -> None:
        members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
        members[f"{big}.npy"] = npy_header(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (4000, 4000), }"
        ) + bytes(64)
        write_members(path, members)

    def negative_shape(path: Path) -> None:
        members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
        members[f"{big}.npy"] = npy_header(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 10), }"
        )
        write_members(path, members)

    def bad_descr(path: Path) -> None:
        members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
        members[f"{big}.npy"] = npy_header(
            "{'descr': 'not-a-dtype', 'fortran_order': False, 'shape': (10, 10), }"
        )
        write_members(path, members)

    def header_code(path: Path) -> None:
        members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
        members[f"{big}.npy"] = npy_header("__import__('os').system('true')")
        write_members(path, members)

    def version_three(path: Path) -> None:
        members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
        members[f"{big}.npy"] = npy_header(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", (3, 0)
        )
        write_members(path, members)

    def not_npy_member(path: Path) -> None:
        members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
        members["readme.txt"] = b"hello"
        write_members(path, members)

    def member_in_folder(path: Path) -> None:
        members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
        members[f"../{big}.npy"] = members.pop(f"{big}.npy")
        write_members(path, members)

    def duplicate_member(path: Path) -> None:
        members = [(f"{k}.npy", npy_bytes(v)) for k, v in arrays.items()]
        members.append((f"{big}.npy", npy_bytes(np.zeros((3, 3)))))
        with __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore")  # zipfile warns of the duplicate
            write_members(path, members)

    def encrypted_flag(path: Path) -> None:
        write_arrays(path, arrays)
        patch_central(path, f"{big}.npy", 8, "<H", 0x1)

    def lzma_member(path: Path) -> None:
        write_members(path, {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}, zipfile.ZIP_LZMA)

    def too_many_members(path: Path) -> None:
        members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
        members.update({f"m{i}.npy": npy_bytes(np.zeros(1)) for i in range(600)})
        write_members(path, members)

    def bomb(path: Path) -> None:
        write_bomb(path, arrays, big)

    def big_endian_strings(path: Path) -> None:
        write_arrays(path, {**arrays, big: np.full((2, 2), "x", dtype=">U1")})

    def empty_zip(path: Path) -> None:
        write_members(path, {})

    def empty_file(path: Path) -> None:
        path.write_bytes(b"")

    def text_file(path: Path) -> None:
        path.write_text("w1,w2\n1,2\n")

    def pickle_file(path: Path) -> None:
        import pickle

        path.write_bytes(pickle.dumps({"risk": [1, 2]}))

    return {
        "empty_file": (empty_file, "not a zip"),
        "text_file": (text_file, "not a zip"),
        "pickle_file": (pickle_file, "not a zip"),
        "renamed_npy": (renamed_npy, "single .npy array"),
        "truncated_half": (truncated_half, "not a readable .npz archive"),
        "truncated_tail": (truncated_tail, "not a readable .npz archive"),
        "corrupted_data": (corrupted, "not a readable .npz archive"),
        "empty_zip": (empty_zip, "it lacks"),
        "huge_header": (huge_header, "8,000,000,000,000 bytes"),
        "lying_zip_size": (lying_zip_size, "the cap is"),
        "header_larger_than_member": (header_larger_than_member, "but its member holds"),
        "negative_shape": (negative_shape, "negative shape"),
        "bad_descr": (bad_descr, "not a readable .npz archive"),
        "header_code": (header_code, "not a readable .npz archive"),
        "npy_version_three": (version_three, "format version"),
        "not_npy_member": (not_npy_member, "'readme.txt'"),
        "member_in_folder": (member_in_folder, "'../risk.npy'"),
        "duplicate_member": (duplicate_member, "appears twice"),
        "encrypted_flag": (encrypted_flag, "encrypted"),
        "lzma_member": (lzma_member, "zip compression 14"),
        "too_many_members": (too_many_members, "at most 512"),
        "deflate_bomb": (bomb, "the cap is"),
        "risk_big_endian_strings": (big_endian_strings, "'risk' has dtype >U1"),
    }


def build(folder: str | Path) -> list[Case]:
    """Write the whole corpus into ``folder``; return its cases (runs first, then views)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base_run = make_base_run(folder / "valid_run")
    base_view = make_base_view(folder / "valid_view" / "network.npz")
    cases: list[Case] = []
    for kind, base, mutations in (
        ("run", base_run / "run.npz", RUN_MUTATIONS),
        ("view", base_view, VIEW_MUTATIONS),
    ):
        arrays = arrays_of(base)
        writers = {
            name: (lambda path, m=mutate, a=arrays: write_arrays(path, m(a)), expect)
            for name, (mutate, expect) in mutations.items()
        }
        writers.update(_format_cases(kind, base, folder, arrays))
        for name, (write, expect) in writers.items():
            case_dir = folder / f"{kind}_{name}"
            case_dir.mkdir(exist_ok=True)
            if kind == "run":
                shutil.copy(base_run / "config.toml", case_dir / "config.toml")
                write(case_dir / "run.npz")
                cases.append(Case(name, kind, case_dir, expect))
            else:
                write(case_dir / "network.npz")
                cases.append(Case(name, kind, case_dir / "network.npz", expect))
    return cases


def big_endian_copy(source: Path, target: Path) -> None:
    """``source`` with every numeric array stored big-endian and Fortran-ordered (valid)."""
    arrays = arrays_of(source)
    converted = {}
    for key, array in arrays.items():
        if array.dtype.kind in "fiu":
            array = array.astype(array.dtype.newbyteorder(">"))
            array = np.asfortranarray(array) if array.ndim > 1 else array
        converted[key] = array
    np.savez_compressed(target, **converted)


if __name__ == "__main__":  # pragma: no cover - a tool
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "archive-corpus")
    for case in build(target):
        print(f"{case.kind:4} {case.name:32} {case.archive.stat().st_size:>10,} B  {case.path}")
