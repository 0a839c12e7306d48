"""Network Hessian spectra from HVPs against the dense Hessian (torch.autograd.functional.hessian)."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

import sgdscape
from sgdscape.networks.curvature import (
    HessianOperator,
    hessian_directions,
    hutchinson_trace,
    spectral_density,
    top_eigenvalues,
    training_curvature,
)
from sgdscape.networks.slicing import flat_parameters, parameter_layout, unflatten


def _net(widths=(4, 12, 3), seed=0, n=96):
    generator = torch.Generator().manual_seed(seed)
    torch_state = torch.random.fork_rng(devices=[])
    with torch_state:
        torch.manual_seed(seed)
        layers = []
        for a, b in itertools.pairwise(widths):
            layers += [nn.Linear(a, b), nn.Tanh()]
        model = nn.Sequential(*layers[:-1])
    x = torch.randn(n, widths[0], generator=generator)
    y = torch.randint(0, widths[-1], (n,), generator=generator)
    return model, nn.CrossEntropyLoss(), x, y


def _dense(model, loss_fn, x, y, theta=None):
    """The oracle: the float64 dense Hessian by reverse-over-reverse autograd, and eigh."""
    names, shapes = parameter_layout(model)
    model64 = _copy64(model)
    flat = (flat_parameters(model) if theta is None else torch.as_tensor(theta)).double()

    def loss(t):
        params = unflatten(t, names, shapes)
        return loss_fn(torch.func.functional_call(model64, params, (x.double(),)), y)

    hessian = torch.autograd.functional.hessian(loss, flat, vectorize=True).numpy()
    values, vectors = np.linalg.eigh(hessian)
    return hessian, values, vectors


def _copy64(model):
    import copy

    return copy.deepcopy(model).double()


@pytest.fixture(scope="module")
def small():
    model, loss_fn, x, y = _net()
    hessian, values, vectors = _dense(model, loss_fn, x, y)
    return model, loss_fn, x, y, hessian, values, vectors


def test_operator_products_equal_the_dense_hessian(small):
    model, loss_fn, x, y, hessian, *_ = small
    op = HessianOperator(model, loss_fn, (x, y), dtype=torch.float64)
    np.testing.assert_allclose(op.dense().numpy(), hessian, atol=1e-10)
    chunked = HessianOperator(model, loss_fn, (x, y), dtype=torch.float64, chunk_size=25)
    v = torch.randn(3, op.size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    np.testing.assert_allclose(chunked.matvec(v).numpy(), v.numpy() @ hessian, atol=1e-10)


def test_top_three_eigenvalues_match_eigvalsh(small):
    model, loss_fn, x, y, _, values, _vectors = small
    pairs = top_eigenvalues(model, loss_fn, (x, y), k=3, seed=0)
    expect = values[::-1][:3]
    np.testing.assert_allclose(pairs.eigenvalues, expect, rtol=1e-4)
    again = top_eigenvalues(model, loss_fn, (x, y), k=3, seed=0)
    np.testing.assert_array_equal(again.eigenvalues, pairs.eigenvalues)  # deterministic
    assert pairs.n_products < len(values)  # fewer products than building the Hessian
    # the reported residuals are ||H u - lambda u|| of the returned pairs, and small
    u = pairs.eigenvectors.astype(np.float64)
    true = np.linalg.norm(u @ small[4] - pairs.eigenvalues[:, None] * u, axis=1)
    np.testing.assert_allclose(pairs.residuals, true, atol=1e-5)
    assert np.all(true < 1e-3)


def test_hessian_directions_are_the_dense_top_two_eigenvectors(small):
    model, loss_fn, x, y, _, _values, vectors = small
    directions = hessian_directions(model, loss_fn, (x, y), seed=3)
    assert isinstance(directions, sgdscape.Directions)
    assert directions.kind == "hessian"
    for d, column in ((directions.d1, -1), (directions.d2, -2)):
        cos = float(d.double() @ torch.from_numpy(vectors[:, column])) / float(d.double().norm())
        assert abs(cos) > 0.999
    np.testing.assert_array_equal(directions.origin.numpy(), flat_parameters(model).numpy())
    surface = sgdscape.slice_landscape(model, loss_fn, (x, y), directions=directions, grid=5)
    assert np.isfinite(surface.risk).all()


def test_hutchinson_trace_is_within_four_standard_errors(small):
    model, loss_fn, x, y, hessian, *_ = small
    exact = float(np.trace(hessian))
    estimate = hutchinson_trace(model, loss_fn, (x, y), n_probes=200, batch=100, seed=5)
    assert estimate.samples.shape == (200,)
    assert estimate.standard_error > 0
    assert abs(estimate.trace - exact) < 4 * estimate.standard_error
    # the SE is the usual one: the spread of v^T H v over sqrt(n)
    assert estimate.standard_error == pytest.approx(np.std(estimate.samples, ddof=1) / np.sqrt(200))


@pytest.mark.parametrize("group_bytes", [None, 1])
def test_hutchinson_samples_are_the_seeded_rademacher_quadratic_forms(
    small, group_bytes, monkeypatch
):
    # each sample is v^T H v of the dense float64 Hessian for the probes drawn as 0/1 integers
    # from the seed and mapped to +-1 (in float64 and in float32: the same probes), whatever the
    # batches and the R-operator's groups (1 byte: one vector a group)
    import sgdscape.networks.r_operator as r_operator

    if group_bytes is not None:
        monkeypatch.setattr(r_operator, "QUADRATIC_BYTES", group_bytes)
    model, loss_fn, x, y, hessian, *_ = small
    draws = torch.randint(0, 2, (23, hessian.shape[0]), generator=torch.Generator().manual_seed(7))
    probes = 2.0 * draws.numpy() - 1.0
    expect = np.einsum("mp,pq,mq->m", probes, hessian, probes)
    for dtype, rtol in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
        got = hutchinson_trace(model, loss_fn, (x, y), n_probes=23, batch=10, seed=7, dtype=dtype)
        np.testing.assert_allclose(got.samples, expect, rtol=rtol, atol=rtol * np.abs(expect).max())
        assert got.trace == pytest.approx(expect.mean(), rel=rtol)
        assert got.standard_error == pytest.approx(np.std(expect, ddof=1) / np.sqrt(23), rel=rtol)


def test_spectral_density_matches_the_exact_spectrum(small):
    model, loss_fn, x, y, _hessian, values, _ = small
    p = values.size
    density = spectral_density(model, loss_fn, (x, y), runs=20, steps=40, n_bins=2000, seed=2)
    np.testing.assert_allclose(density.weights.sum(axis=1), 1.0, rtol=1e-10)
    # each run's k-th moment estimates tr(H^k)/p: within 4 standard errors over the runs
    for order in (1, 2):
        exact = np.mean(values**order)
        runs = density.moment(order)
        se = runs.std(ddof=1) / np.sqrt(runs.size)
        assert abs(runs.mean() - exact) < 4 * se + 1e-9 * abs(exact)
    # the SLQ distribution against the histogram (CDF) of the exact eigenvalues
    nodes, weights = density.nodes.ravel(), density.weights.ravel() / density.weights.shape[0]
    points = np.linspace(values[0], values[-1], 50)
    slq_cdf = np.array([weights[nodes <= t].sum() for t in points])
    exact_cdf = np.searchsorted(values, points, side="right") / p
    assert np.max(np.abs(slq_cdf - exact_cdf)) < 0.15
    # the smoothed density integrates to 1 and has the spectrum's mean
    step = density.grid[1] - density.grid[0]
    assert density.density.sum() * step == pytest.approx(1.0)
    assert (density.grid * density.density).sum() * step == pytest.approx(
        np.mean(values), abs=0.05 * np.abs(values).max()
    )


def test_along_a_recorded_run_full_and_minibatch_sharpness(small):
    model, loss_fn, x, y, *_ = small
    recording = sgdscape.record_training(model, loss_fn, (x, y), lr=0.5, batch_size=16, max_steps=6)
    result = training_curvature(recording, steps=[0, 5], k=2, seed=1)
    assert result.eigenvalues.shape == (2, 2)
    for row, step in enumerate(result.steps):
        theta = recording.iterates[step]
        _, full, _ = _dense(model, loss_fn, x, y, theta)
        np.testing.assert_allclose(result.eigenvalues[row], full[::-1][:2], rtol=1e-4)
        index = torch.from_numpy(recording.batch(int(step)))
        _, batch, _ = _dense(model, loss_fn, x[index], y[index], theta)
        np.testing.assert_allclose(result.batch_eigenvalues[row], batch[::-1][:2], rtol=1e-4)
    assert result.stability_threshold == pytest.approx(2 / 0.5)


def test_bad_arguments_name_the_value(small):
    model, loss_fn, x, y, *_ = small
    with pytest.raises(sgdscape.SgdscapeError, match="k must be between 1"):
        top_eigenvalues(model, loss_fn, (x, y), k=0)
    with pytest.raises(sgdscape.SgdscapeError, match="n_probes"):
        hutchinson_trace(model, loss_fn, (x, y), n_probes=1)
    with pytest.raises(sgdscape.SgdscapeError, match="theta has 3 values"):
        top_eigenvalues(model, loss_fn, (x, y), theta=torch.zeros(3))


@pytest.mark.slow
def test_top_three_on_a_network_of_nearly_2000_parameters():
    model, loss_fn, x, y = _net(widths=(16, 40, 24, 4), seed=7, n=200)
    _, values, _ = _dense(model, loss_fn, x, y)
    assert 1500 < values.size <= 2000
    pairs = top_eigenvalues(model, loss_fn, (x, y), k=3, seed=0, max_steps=200)
    np.testing.assert_allclose(pairs.eigenvalues, values[::-1][:3], rtol=1e-4)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(small):
    model, loss_fn, x, y, hessian, _values, _ = small
    cpu = top_eigenvalues(model, loss_fn, (x, y), k=3, seed=0)
    gpu = top_eigenvalues(model, loss_fn, (x, y), k=3, seed=0, device="cuda")
    np.testing.assert_allclose(gpu.eigenvalues, cpu.eigenvalues, rtol=1e-4)
    trace = hutchinson_trace(model, loss_fn, (x, y), n_probes=100, seed=1, device="cuda")
    assert abs(trace.trace - np.trace(hessian)) < 4 * trace.standard_error


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error(small):
    model, loss_fn, x, y, *_ = small
    with pytest.raises(sgdscape.SgdscapeError, match="CUDA"):
        top_eigenvalues(model, loss_fn, (x, y), device="cuda")


def _mlp(kind, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind == "relu":
            return nn.Sequential(nn.Linear(5, 9), nn.ReLU(), nn.Linear(9, 3))
        if kind == "deep":  # no bias, composed activations, an eval-mode dropout, a final tanh
            return nn.Sequential(
                nn.Linear(5, 7),
                nn.GELU(),
                nn.Linear(7, 6, bias=False),
                nn.Sigmoid(),
                nn.Dropout(0.3),
                nn.Linear(6, 3),
                nn.Tanh(),
            ).eval()
        return nn.Sequential(nn.Linear(5, 3))  # "linear": a single layer


def _problem(
    loss_name: str, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, nn.Module, torch.Tensor]:
    """``(x, y, loss_fn, target)``: 50 samples of 5 features drawn from ``generator``, with 3
    regression targets (``mse``) or 3 classes; ``target`` is ``y`` as a float64 model takes it."""
    x = torch.randn(50, 5, generator=generator)
    if loss_name == "mse":
        y = torch.randn(50, 3, generator=generator)
        return x, y, nn.MSELoss(), y.double()
    y = torch.randint(0, 3, (50,), generator=generator)
    return x, y, nn.CrossEntropyLoss(), y


@pytest.mark.parametrize("kind", ["relu", "deep", "linear"])
@pytest.mark.parametrize("loss_name", ["cross-entropy", "mse"])
def test_r_operator_products_and_quadratic_forms_equal_the_dense_hessian(kind, loss_name):
    from sgdscape.networks.curvature import SequentialHessian

    generator = torch.Generator().manual_seed(3)
    x, y, loss_fn, target = _problem(loss_name, generator)
    model = _mlp(kind)
    hessian, *_ = _dense(model, loss_fn, x, target)
    names, shapes = parameter_layout(model)
    theta = flat_parameters(model).double()
    built = SequentialHessian.build(model, loss_fn, names, shapes, theta, x.double(), target)
    assert built is not None  # the R-operator path is the one under test
    v = torch.randn(6, len(theta), generator=generator, dtype=torch.float64)
    for chunk in (None, 20):  # one pass, and three chunks of a mean loss
        op = HessianOperator(model, loss_fn, (x, y), dtype=torch.float64, chunk_size=chunk)
        np.testing.assert_allclose(op.dense().numpy(), hessian, atol=1e-10)
        np.testing.assert_allclose(op.matvec(v[:1]).numpy(), v[:1].numpy() @ hessian, atol=1e-10)
        quadratic = np.einsum("mp,pq,mq->m", v.numpy(), hessian, v.numpy())
        np.testing.assert_allclose(op.quadratic_form(v).numpy(), quadratic, rtol=1e-10, atol=1e-12)
    generic = HessianOperator(model, loss_fn, (x, y), dtype=torch.float64, use_algebra=False)
    np.testing.assert_allclose(generic.dense().numpy(), hessian, atol=1e-10)


@pytest.mark.parametrize("kind", ["relu", "deep", "linear"])
@pytest.mark.parametrize("loss_name", ["cross-entropy", "mse"])
def test_operator_gradient_equals_autograd(kind, loss_name):
    # the gradient that seeds Lanczos's start, against torch.autograd.grad in float64, for the
    # R-operator's kept pass (one chunk and three) and the generic torch.func path
    x, y, loss_fn, target = _problem(loss_name, torch.Generator().manual_seed(5))
    model = _mlp(kind)
    model64 = _copy64(model)
    loss = loss_fn(model64(x.double()), target)
    expect = torch.cat([g.flatten() for g in torch.autograd.grad(loss, model64.parameters())])
    for chunk, algebra in ((None, True), (20, True), (None, False)):
        op = HessianOperator(
            model, loss_fn, (x, y), dtype=torch.float64, chunk_size=chunk, use_algebra=algebra
        )
        np.testing.assert_allclose(op.gradient().numpy(), expect.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("start", ["gradient", "random"])
def test_both_start_vectors_give_the_dense_top_three(small, start):
    model, loss_fn, x, y, _, values, _vectors = small
    pairs = top_eigenvalues(model, loss_fn, (x, y), k=3, seed=2, start=start)
    np.testing.assert_allclose(pairs.eigenvalues, values[::-1][:3], rtol=1e-4)
    again = top_eigenvalues(model, loss_fn, (x, y), k=3, seed=2, start=start)
    np.testing.assert_array_equal(again.eigenvalues, pairs.eigenvalues)  # deterministic
    other = top_eigenvalues(model, loss_fn, (x, y), k=3, seed=3, start=start)
    assert other.n_products != pairs.n_products or not np.array_equal(
        other.eigenvalues, pairs.eigenvalues
    )  # the seed still enters the start


def test_a_bad_start_names_the_allowed_ones(small):
    model, loss_fn, x, y, *_ = small
    with pytest.raises(sgdscape.SgdscapeError, match=r"'gradient' or 'random'.*'power'"):
        top_eigenvalues(model, loss_fn, (x, y), start="power")


def test_r_operator_declines_what_it_does_not_cover_and_the_generic_path_answers():
    from sgdscape.networks.curvature import SequentialHessian

    generator = torch.Generator().manual_seed(4)
    x = torch.randn(30, 5, generator=generator)
    y = torch.randint(0, 3, (30,), generator=generator)
    training_dropout = nn.Sequential(nn.Linear(5, 4), nn.Dropout(0.5), nn.Linear(4, 3))
    ignored = y.clone()
    ignored[0] = -100
    cases = [
        (training_dropout, nn.CrossEntropyLoss(), y),  # random masks
        (
            nn.Sequential(nn.Linear(5, 4), nn.LayerNorm(4), nn.Linear(4, 3)),
            nn.CrossEntropyLoss(),
            y,
        ),
        (_mlp("relu"), nn.CrossEntropyLoss(label_smoothing=0.1), y),
        (_mlp("relu"), nn.CrossEntropyLoss(), ignored),
        (_mlp("relu"), nn.NLLLoss(), y),
    ]
    for model, loss_fn, target in cases:
        names, shapes = parameter_layout(model)
        theta = flat_parameters(model)
        assert SequentialHessian.build(model, loss_fn, names, shapes, theta, x, target) is None
    model, loss_fn = cases[1][0], cases[1][1]
    hessian, *_ = _dense(model, loss_fn, x, y)
    op = HessianOperator(model, loss_fn, (x, y), dtype=torch.float64)
    np.testing.assert_allclose(op.dense().numpy(), hessian, atol=1e-10)
    v = torch.randn(2, op.size, generator=generator, dtype=torch.float64)
    quadratic = np.einsum("mp,pq,mq->m", v.numpy(), hessian, v.numpy())
    np.testing.assert_allclose(op.quadratic_form(v).numpy(), quadratic, rtol=1e-9, atol=1e-12)


def test_r_operator_state_belongs_to_its_point_and_data():
    """The kept passes (both layouts) are per operator: another point, other data, or the model
    moved in place after an operator was built, each give that point's and data's Hessian."""
    generator = torch.Generator().manual_seed(5)
    model, loss_fn = _mlp("relu"), nn.CrossEntropyLoss()
    x, x2 = torch.randn(40, 5, generator=generator), torch.randn(30, 5, generator=generator)
    y, y2 = (
        torch.randint(0, 3, (40,), generator=generator),
        torch.randint(0, 3, (30,), generator=generator),
    )
    theta = flat_parameters(model).double()
    # (a point the float32 model can hold: theta is taken in the model's dtype)
    moved = (
        (theta + 0.5 * torch.randn(theta.shape, generator=generator, dtype=torch.float64))
        .float()
        .double()
    )
    v = torch.randn(4, theta.numel(), generator=generator, dtype=torch.float64)
    products = {}
    for point, (data_x, data_y) in itertools.product((theta, moved), ((x, y), (x2, y2))):
        hessian, values, _ = _dense(model, loss_fn, data_x, data_y, point)
        op = HessianOperator(model, loss_fn, (data_x, data_y), point, dtype=torch.float64)
        expect = v.numpy() @ hessian
        # one vector (column layout), several (row layout, made on first use), one again
        np.testing.assert_allclose(op.matvec(v[:1]).numpy(), expect[:1], atol=1e-10)
        np.testing.assert_allclose(op.matvec(v).numpy(), expect, atol=1e-10)
        np.testing.assert_allclose(op.matvec(v[1:2]).numpy(), expect[1:2], atol=1e-10)
        top = top_eigenvalues(model, loss_fn, (data_x, data_y), point, k=2, dtype=torch.float64)
        np.testing.assert_allclose(top.eigenvalues, values[::-1][:2], rtol=1e-6)
        products[len(data_x), bool(point is moved)] = op.matvec(v[:1]).numpy()
    assert len({p.tobytes() for p in products.values()}) == 4  # four different Hessians
    # an operator built on the model keeps that point when the model moves afterwards
    before = HessianOperator(model, loss_fn, (x, y), dtype=torch.float64)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3)
    after = HessianOperator(model, loss_fn, (x, y), dtype=torch.float64)
    np.testing.assert_allclose(before.matvec(v[:1]).numpy(), products[40, False], atol=1e-10)
    hessian_after, *_ = _dense(model, loss_fn, x, y)
    np.testing.assert_allclose(
        after.matvec(v[:1]).numpy(), v[:1].numpy() @ hessian_after, atol=1e-10
    )
