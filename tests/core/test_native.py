"""The precompiled C landscape kernels (sgdscape.core.native) and the engine choice."""

import logging
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

import sgdscape
from sgdscape.core import landscape_paths, native
from sgdscape.core.models import MODELS

SCALE_MODELS = ["relu-unit", "linear-product", "tanh-unit", "sigmoid-unit", "leaky-relu-unit"]


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """A fresh, empty kernel cache for this test; the process's library state restored after."""
    monkeypatch.setenv("SGDSCAPE_CACHE_DIR", str(tmp_path))
    native.reset()
    yield tmp_path
    monkeypatch.undo()
    native.reset()


def _data(n, generator):
    x = torch.empty(n, 1).uniform_(-1, 1, generator=generator)
    return sgdscape.Dataset(x, 2 * x + 0.3 * torch.randn(n, 1, generator=generator))


@pytest.mark.parametrize("loss", sorted(native.LOSSES))
@pytest.mark.parametrize("name", SCALE_MODELS)
def test_native_per_sample_grids_equal_the_plain_path(name, loss, generator):
    data = _data(77, generator)
    grid = sgdscape.Grid((-3.0, 2.0, 71), (-2.5, 3.0, 13))  # 71 columns: vector tails too
    native_result = sgdscape.landscape(name, data, grid, loss=loss, engine="native")
    plain = sgdscape.landscape(name, data, grid, loss=loss, engine="plain")
    if name in ("tanh-unit", "sigmoid-unit"):
        # torch's own tanh/sigmoid differ by an ulp between its vector body and scalar tail,
        # and the plain path lays the same values out differently: equal within rounding
        np.testing.assert_allclose(native_result.sample_loss, plain.sample_loss, rtol=1e-6)
    else:  # the piecewise-linear models: the same float32 operations, bit for bit
        np.testing.assert_array_equal(native_result.sample_loss, plain.sample_loss)
    np.testing.assert_allclose(native_result.risk, plain.risk, rtol=1e-5, atol=1e-6)
    risk_only = sgdscape.landscape(name, data, grid, loss=loss, engine="native", per_sample=False)
    # float64 oracle: the mean of the (exact) per-sample losses
    np.testing.assert_allclose(
        risk_only.risk, plain.sample_loss.astype(np.float64).mean(0), rtol=2e-6, atol=1e-7
    )


def test_native_slice_of_a_three_parameter_model(generator):
    data = _data(50, generator)
    model = MODELS["relu-unit-bias"]
    plane = sgdscape.Plane.through(model.param_names, fixed={"b": 0.3})
    grid = sgdscape.Grid.square(33)
    fast = sgdscape.landscape(model, data, grid, plane=plane, engine="native")
    plain = sgdscape.landscape(model, data, grid, plane=plane, engine="plain")
    np.testing.assert_array_equal(fast.sample_loss, plain.sample_loss)


@pytest.mark.parametrize(
    "options",
    [{}, {"fixed": {"b": 0.3}}, {"axes": ("w2", "w1")}, {"axes": ("w1", "b"), "fixed": {"w2": 2}}],
)
def test_plane_split_equals_the_pointwise_split(options):
    model = MODELS["relu-unit-bias"]
    plane = sgdscape.Plane.through(model.param_names, **options)
    a, b = (torch.from_numpy(axis) for axis in sgdscape.Grid((-3.0, 2.0, 9), (-1.0, 4.0, 7)).axes())
    pointwise = landscape_paths.scale_split(model, plane.points(a, b))
    cheap = landscape_paths.plane_split(model, plane, a, b)
    assert (pointwise is None) == (cheap is None) == (options.get("axes", ("w1",))[0] != "w1")
    if cheap is not None:
        torch.testing.assert_close(cheap[0], pointwise[0], rtol=0, atol=0)
        torch.testing.assert_close(cheap[1], pointwise[1], rtol=0, atol=0)


def test_a_general_plane_has_no_split():
    plane = sgdscape.Plane(torch.zeros(2), torch.tensor([1.0, 0.5]), torch.tensor([0.0, 1.0]))
    a = b = torch.linspace(-1, 1, 5)
    assert landscape_paths.plane_split(MODELS["relu-unit"], plane, a, b) is None


def test_the_default_engine_equals_the_plain_path_at_the_issues_size(generator):
    # the materialised per-sample landscape of issue 16, scaled down 10x in samples
    if native.library() is None:  # built (or loaded) now: auto then takes it
        pytest.skip("no C compiler")
    data = sgdscape.ground_truth(100, seed=3)
    grid = sgdscape.Grid.square(300)
    before = dict(native.calls)
    default = sgdscape.landscape("relu-unit", data, grid)
    assert native.calls["fill"] > before.get("fill", 0)  # the default ran the native kernels
    plain = sgdscape.landscape("relu-unit", data, grid, engine="plain")
    np.testing.assert_array_equal(default.sample_loss, plain.sample_loss)
    np.testing.assert_allclose(default.risk, plain.risk, rtol=1e-5, atol=1e-6)


def test_the_library_is_built_once_per_machine_and_then_loaded(own_cache):
    before = native.builds
    assert native.startup_seconds() == native.DEFAULT_BUILD_SECONDS  # nothing on disk yet
    assert native.library() is not None
    assert native.builds == before + 1 and native.loaded()
    assert native.startup_seconds() == 0.0
    measured = native.build_seconds()
    assert 0 < measured < 60 and (own_cache / "native" / "build-seconds.json").exists()
    native.reset()  # a later process: the library is on disk
    assert native.startup_seconds() < 0.01
    assert native.library() is not None and native.builds == before + 1  # loaded, not built


def test_auto_builds_nothing_for_the_seeds_small_run(own_cache, seed_data):
    before = native.builds
    sgdscape.landscape("relu-unit", seed_data)  # 100 samples x 100x100
    assert native.builds == before and not native.loaded()
    assert not (own_cache / "native").exists() or not list((own_cache / "native").glob("*.so"))


def test_auto_uses_the_kernels_once_they_cost_no_start_up(own_cache, seed_data):
    native.library()  # built: later calls start for free
    choice = landscape_paths.choose_path(  # the risk alone (small per-sample work is direct)
        "auto",
        MODELS["relu-unit"],
        sgdscape.get_loss("mse"),
        100,
        100 * 100,
        False,
        (torch.zeros(100), torch.zeros(100, 2)),
        torch.device("cpu"),
        2**30,
    )
    assert choice == "native"


@pytest.mark.parametrize(
    "startup, evaluations, expected",
    [(1.0, 1e6, "direct"), (1.0, 2e9, "native"), (float("inf"), 2e9, "fused")],
)
def test_auto_weighs_start_up_against_the_work(monkeypatch, startup, evaluations, expected):
    monkeypatch.setattr(native, "startup_seconds", lambda: startup)
    monkeypatch.setattr(native, "built", lambda: True)  # the start-up is a load, as given
    monkeypatch.setattr(landscape_paths, "RATES", dict(landscape_paths.START_RATES))
    monkeypatch.setattr(landscape_paths, "is_warm", lambda *args: False)  # nothing compiled
    n = 1000
    choice = landscape_paths.choose_path(
        "auto",
        MODELS["relu-unit"],
        sgdscape.get_loss("mse"),
        n,
        int(evaluations / n),
        expected == "direct",
        (torch.zeros(10), torch.zeros(10, 2)),
        torch.device("cpu"),
        2**40,
    )
    assert choice == expected


@pytest.mark.parametrize(
    "n, points, builds", [(100, 100 * 100, False), (1000, 300 * 300, True), (2000, 10**6, True)]
)
def test_auto_builds_the_library_when_the_work_pays_a_share_of_it(
    own_cache, monkeypatch, n, points, builds
):
    # nothing on disk: a build costs about a second, charged a quarter per call
    monkeypatch.setattr(landscape_paths, "RATES", dict(landscape_paths.START_RATES))
    choice = landscape_paths.choose_path(
        "auto",
        MODELS["relu-unit"],
        sgdscape.get_loss("mse"),
        n,
        points,
        True,
        (torch.zeros(10), torch.zeros(10, 2)),
        torch.device("cpu"),
        2**30 - 4 * n * points,  # the default budget less the output, as landscape() has it
    )
    assert (choice == "native") == builds and not native.loaded()


@pytest.mark.parametrize("compiler, reason", [("no-such-compiler", "no C compiler"), ("false", "")])
def test_without_a_compiler_the_torch_path_runs_with_one_line(
    own_cache, monkeypatch, caplog, compiler, reason
):
    # a missing compiler, or one that fails (``false`` exits 1 for any input)
    monkeypatch.setenv("CC", compiler if compiler == "false" else str(own_cache / compiler))
    native.reset()
    data = sgdscape.ground_truth(40, seed=0)
    grid = sgdscape.Grid.square(12)
    with caplog.at_level(logging.WARNING, logger="sgdscape"):
        fast = sgdscape.landscape("relu-unit", data, grid, engine="native")
        sgdscape.landscape("relu-unit", data, grid, engine="native")
    plain = sgdscape.landscape("relu-unit", data, grid, engine="plain")
    np.testing.assert_array_equal(fast.sample_loss, plain.sample_loss)
    notices = [r.getMessage() for r in caplog.records if "native" in r.getMessage()]
    assert len(notices) == 1 and reason in notices[0] and "\n" not in notices[0]
    assert native.startup_seconds() == float("inf")


def test_kernels_reject_arrays_of_the_wrong_type():
    if native.library() is None:
        pytest.skip("no C compiler")
    out = np.empty((2, 3, 4), dtype=np.float64)
    with pytest.raises(ValueError, match="float32"):
        native.scaled_fill(
            out,
            np.zeros(4, np.float32),
            np.zeros((2, 3), np.float32),
            np.zeros(2, np.float32),
            "mse",
        )


def test_a_small_per_sample_landscape_takes_one_path_whatever_the_process_did_before(
    own_cache, seed_data
):
    # the oracle: the same call in a fresh process (nothing loaded, nothing learned)
    code = (
        "import sys, numpy as np, sgdscape\n"
        "d = sgdscape.ground_truth(100, seed=0)\n"
        "np.save(sys.argv[1], sgdscape.landscape('relu-unit', d).risk)\n"
    )
    fresh = own_cache / "fresh.npy"
    subprocess.run([sys.executable, "-c", code, str(fresh)], check=True, timeout=300)
    native.library()  # this process has the kernels loaded and fast rates learned
    landscape_paths.learn_rate("native", True, 1e9, 0.01)
    here = sgdscape.landscape("relu-unit", sgdscape.ground_truth(100, seed=0)).risk
    assert np.array_equal(here, np.load(fresh))


def test_released_worker_threads_end_and_the_next_call_starts_new_ones():
    """A process about to end releases the kernels' idle workers (they would otherwise keep
    it from ending quickly); a later call still splits its work over threads, with the same
    sums as one thread, computed here in float64 as the oracle."""
    if native.library() is None:
        pytest.skip("no C compiler")
    rng = np.random.default_rng(0)
    scale = rng.standard_normal(64).astype(np.float32)  # work enough to be split:
    hidden = rng.standard_normal((64, 300)).astype(np.float32)  # 64 x 64 x 300 >= 2**20
    y = rng.standard_normal(300).astype(np.float32)
    assert scale.size * hidden.size >= native.SINGLE_THREAD_BELOW
    residuals = scale[None, :, None].astype(float) * hidden[:, None, :] - y
    expected = (residuals**2).sum(axis=2)

    def workers() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("sgdscape-native")]

    for _ in range(2):
        total = np.zeros((64, 64))
        native.scaled_risk(total, scale, hidden, y, "mse", threads=2)
        np.testing.assert_allclose(total, expected, rtol=1e-5)
        assert workers()  # the split ran in the pool's threads
        native.release_threads()
        assert not workers()
