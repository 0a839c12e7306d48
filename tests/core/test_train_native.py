"""The native training kernels (sgdscape.core.native.relu_sgd_steps, relu_moments): the
same records as the torch row loop, engine="plain" and the seed's own loop, bit for bit;
the same results without the library; and engine="auto" weighing their start-up."""

import numpy as np
import pytest
import torch

import sgdscape
from sgdscape.core import native, row_steps
from sgdscape.core import path as path_module
from sgdscape.core import train as train_module
from sgdscape.core.losses import get_loss
from sgdscape.core.models import get_model
from sgdscape.core.optimizers import SgdUpdate
from sgdscape.surfaces.bench.seed import seed_train

FIELDS = ("iterates", "grads", "batch_loss", "final", "diverged_step", "risk", "full_grads")

pytestmark = pytest.mark.skipif(native.library() is None, reason="no C compiler")


def bits(array):
    """The stored bits (signs of zero and NaN payloads included)."""
    array = np.ascontiguousarray(array)
    return array.view({4: np.int32, 8: np.int64}[array.dtype.itemsize])


def same_bits(a, b):
    return (a is None and b is None) or np.array_equal(bits(a), bits(b))


def edge_inits(n, finite=True, seed=3):
    """``n`` inits: uniform, plus dead units, signed zeros, huge and tiny values, and NaN
    and inf unless ``finite`` (``train`` refuses those)."""
    values = torch.empty(n, 2).uniform_(-3, 3, generator=torch.Generator().manual_seed(seed))
    big = 3e38 if finite else np.inf
    special = [
        [0.0, 1.0], [1.0, 0.0], [-0.0, -0.0], [0.0, -0.0], [0.0 if finite else np.nan, 1.0],
        [1.0, big], [1e30, 1e30], [1e-30, 1.0], [1.0, 1e-25], [-1e-30, 1e-22], [1e-19, -1e-19],
    ]  # fmt: skip
    values[: len(special)] = torch.tensor(special)
    values[-3:] = values[7:10]  # the underflow cases in a vector tail as well
    return values


@pytest.fixture
def forced(monkeypatch):
    """``set(kernel)``: make ``train``'s row engine use ``"native"`` or ``"torch"``; returns
    the count of native step calls made since."""
    real = row_steps.take_row_steps

    def use(kernel):
        def take(*args, **kw):
            return real(*args, **{**kw, "kernel": kernel})

        monkeypatch.setattr(train_module, "take_row_steps", take)
        monkeypatch.setattr(
            path_module, "native_moments", lambda *args: kernel == "native" and True
        )
        return native.calls["relu-sgd"]

    return use


@pytest.mark.parametrize(
    "n_inits, options",
    [
        (203, {}),  # 203: vector bodies and a scalar tail per thread
        (64, {"lr": 40.0, "epochs": 2}),  # most runs diverge
        (50, {"lr": 1e4, "epochs": 3}),  # every run diverges: the batch stops early
        (37, {"schedule": "cosine", "epochs": 2, "sampling": "shuffle", "seed": 1}),
        (5000, {"epochs": 2}),  # two threads
    ],
)
def test_native_steps_record_the_torch_loops_and_the_plain_engines_bits(forced, n_inits, options):
    data = sgdscape.ground_truth(70, seed=0)
    inits = edge_inits(n_inits)
    kwargs = {"lr": 0.05, **options}
    before = forced("native")
    fast = sgdscape.train("relu-unit", data, init=inits, **kwargs)
    assert native.calls["relu-sgd"] > before, "the native kernel did not run"
    forced("torch")
    rows = sgdscape.train("relu-unit", data, init=inits, **kwargs)
    plain = sgdscape.train("relu-unit", data, init=inits, engine="plain", **kwargs)
    assert fast.n_steps == rows.n_steps == plain.n_steps
    for field in FIELDS:
        assert same_bits(getattr(fast, field), getattr(rows, field)), field
    for field in ("iterates", "grads", "batch_loss", "final", "diverged_step"):
        assert same_bits(getattr(fast, field), getattr(plain, field)), field


def test_native_steps_equal_the_seeds_own_loop(forced, seed_data):
    # the oracle: the seed notebook's train (autograd, torch.optim.SGD), one init at a time
    inits = torch.tensor([[1.2, -2.3], [0.5, 1.0], [-1.5, 2.0], [2.5, 0.1], [0.0, 1.0]])
    forced("native")
    fast = sgdscape.train("relu-unit", seed_data, init=inits, lr=0.05)
    for k, init in enumerate(inits):
        iterates, grads = seed_train(seed_data.x, seed_data.y, init=init.clone(), lr=0.05)
        assert same_bits(fast.iterates[k], iterates.astype(np.float32)), k
        assert same_bits(fast.grads[k], grads.astype(np.float32)), k


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_the_kernel_alone_equals_the_torch_loop_for_any_split(threads):
    n_inits, n_steps = 4099, 130
    generator = torch.Generator().manual_seed(5)
    inits = edge_inits(n_inits, finite=False)
    x = torch.randn(n_steps, generator=generator).tolist()
    y = torch.randn(n_steps, generator=generator).tolist()
    x[3], x[4], y[5] = 0.0, -0.0, -0.0
    lrs = np.linspace(0.3, 0.001, n_steps).tolist()
    model, sgd = get_model("relu-unit"), SgdUpdate()
    out = {}
    for kernel in ("native", "torch"):
        w = inits.clone()
        records = (
            torch.empty(n_steps, 2, n_inits), torch.empty(n_steps, 2, n_inits),
            torch.empty(n_steps, n_inits),
        )  # fmt: skip
        done = row_steps.take_row_steps(
            model, sgd, w, x, y, lrs, *records, 64, kernel=kernel, threads=threads
        )
        out[kernel] = (done, w, *records)
    assert out["native"][0] == out["torch"][0] == n_steps
    for got, want in zip(out["native"][1:], out["torch"][1:], strict=True):
        assert same_bits(got.numpy(), want.numpy())


def test_the_probe_tells_the_two_roundings_apart():
    # each multiply-add the loop has (addcmul, add(alpha=), add_(alpha=)) differs between
    # one and two roundings on the probe's inputs, and torch matches exactly one of them
    assert row_steps.mac_variant() is not None
    w = torch.empty(50, 2).uniform_(-3, 3, generator=torch.Generator().manual_seed(0))
    w[:4] = torch.tensor([[1e-30, 1.0], [1.0, 1e-25], [-1e-30, 1.0], [1.0, 1e-25]])
    x, y, lrs = [1e-20, 0.7, 1e-20], [0.2, -0.4, 0.2], [0.05, 0.3, 1e-3]
    fused = row_steps._native_probe(w, x, y, lrs, True)
    split = row_steps._native_probe(w, x, y, lrs, False)
    grads_fused, grads_split = bits(fused[1][0]), bits(split[1][0])
    assert (grads_fused[0] != grads_split[0]).any()  # 0 + g r: addcmul
    assert (grads_fused[1] != grads_split[1]).any()  # 0 + g_z x: add(alpha=)
    assert (bits(fused[0][2]) != bits(split[0][2])).any()  # w - lr d: add_(alpha=)


def test_native_moments_equal_the_torch_moment_path(monkeypatch):
    data = sgdscape.ground_truth(100, seed=0)
    x, y = data.x.reshape(-1), data.y.reshape(-1)
    model, loss = get_model("relu-unit"), get_loss("mse")
    iterates = edge_inits(3001, finite=False).T[None].repeat(3, 1, 1).contiguous()  # (3, 2, K)
    iterates[1] *= 1e20  # overflowing risks: evaluated per sample
    iterates[2] *= -0.5
    monkeypatch.setattr(path_module, "native_moments", lambda *args: True)
    before = native.calls["relu-moments"]
    fast = path_module.moment_path(model, loss, iterates, x, y)
    assert native.calls["relu-moments"] == before + 1
    monkeypatch.setattr(path_module, "native_moments", lambda *args: False)
    reference = path_module.moment_path(model, loss, iterates, x, y)
    assert not torch.isfinite(reference[0]).all()  # the per-sample fallback was exercised
    for got, want in zip(fast, reference, strict=True):
        assert same_bits(got.numpy(), want.numpy())


@pytest.mark.parametrize("how", ["no library", "no compiler"])
def test_without_the_library_train_gives_the_same_bits(forced, monkeypatch, tmp_path, how):
    data = sgdscape.ground_truth(60, seed=1)
    inits = edge_inits(300)
    forced("native")
    fast = sgdscape.train("relu-unit", data, init=inits, lr=0.1, epochs=2)
    if how == "no library":  # a failed build, say
        monkeypatch.setattr(native, "library", lambda: None)
    else:  # an empty cache and no C compiler: one logged line, then torch
        monkeypatch.setenv("SGDSCAPE_CACHE_DIR", str(tmp_path))
        monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
        native.reset()
    try:
        before = dict(native.calls)
        fallback = sgdscape.train("relu-unit", data, init=inits, lr=0.1, epochs=2)
        assert dict(native.calls) == before  # nothing native ran
        assert row_steps.mac_variant() is None
        if how == "no compiler":
            assert native.startup_charge() == float("inf")  # auto never asks for it again
    finally:
        monkeypatch.undo()
        native.reset()
    for field in FIELDS:
        assert same_bits(getattr(fast, field), getattr(fallback, field)), field


@pytest.mark.parametrize(
    "charge, n_inits, n_steps, expected",
    [
        (0.0, 1, 100, True),  # loaded: even the seed's single run
        (0.002, 1, 100, True),  # on disk: a load costs less than 100 torch steps
        (0.25, 1, 100, False),  # a share of a build: not for the seed's run
        (0.25, 10_000, 100, False),  # nor for one 10,000-init call
        (0.25, 100_000, 1000, True),  # but for large work
        (float("inf"), 100_000, 1000, False),  # never without a library
    ],
)
def test_auto_weighs_the_start_up_against_the_work(monkeypatch, charge, n_inits, n_steps, expected):
    monkeypatch.setattr(native, "startup_charge", lambda: charge)
    monkeypatch.setattr(row_steps, "ROW_RATES", {"torch": 1e8, "native": 4e8})
    model, cpu = get_model("relu-unit"), torch.device("cpu")
    assert row_steps.native_row_steps(model, SgdUpdate(), n_inits, n_steps, cpu) == expected
    # momentum, weight decay and other models keep the torch loop
    assert not row_steps.native_row_steps(model, SgdUpdate(momentum=0.9), n_inits, n_steps, cpu)
    assert not row_steps.native_row_steps(model, SgdUpdate(weight_decay=0.1), n_inits, n_steps, cpu)


def test_a_process_that_keeps_paying_the_torch_loop_builds_the_library(monkeypatch, tmp_path):
    monkeypatch.setenv("SGDSCAPE_CACHE_DIR", str(tmp_path))  # nothing on disk
    native.reset()
    try:
        share = native.startup_charge()
        assert share == pytest.approx(native.build_seconds() / native.TRAIN_BUILD_SHARE)
        native.torch_seconds_spent = share / 2
        assert native.startup_charge() == pytest.approx(share / 2)
        native.torch_seconds_spent = 10 * share  # the build has paid for itself
        assert native.startup_charge() == 0.002
    finally:
        monkeypatch.undo()
        native.reset()
