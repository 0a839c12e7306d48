"""Exact Hessians of the 2-parameter lab against second derivatives derived by hand (numpy)."""

import numpy as np
import pytest
import torch

import sgdscape
from sgdscape.core.curvature import KINDS, classify, curvature_map, hessians, quadratic_model


def _data(n=37, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, n)
    y = 1.5 * x + 0.3 * rng.standard_normal(n)
    return x, y


def _gauss_newton(grad_f, hess_f, r):
    """Hessian of mean (f - y)^2 from per-sample grad f (n, 2), Hessian f (n, 2, 2), residual (n,)."""
    return 2 * np.mean(grad_f[:, :, None] * grad_f[:, None, :] + r[:, None, None] * hess_f, axis=0)


def _analytic(model, w, x, y):
    """Hand-derived Hessian of the mse risk R = mean (f - y)^2 at w: (2,)."""
    w1, w2 = w
    n = x.size
    zero = np.zeros(n)
    if model == "relu-unit":
        on = (w2 * x > 0).astype(float)
        f = w1 * np.maximum(w2 * x, 0)
        grad = np.stack([np.maximum(w2 * x, 0), w1 * x * on], 1)
        cross = x * on
        hess = np.stack([np.stack([zero, cross], 1), np.stack([cross, zero], 1)], 1)
    elif model == "leaky-relu-unit":
        slope = np.where(w2 * x > 0, 1.0, 0.1)
        f = w1 * slope * w2 * x
        grad = np.stack([slope * w2 * x, w1 * x * slope], 1)
        cross = x * slope
        hess = np.stack([np.stack([zero, cross], 1), np.stack([cross, zero], 1)], 1)
    elif model == "linear-product":
        f = w1 * w2 * x
        grad = np.stack([w2 * x, w1 * x], 1)
        hess = np.stack([np.stack([zero, x], 1), np.stack([x, zero], 1)], 1)
    elif model == "tanh-unit":
        t = np.tanh(w2 * x)
        s = 1 - t**2
        f = w1 * t
        grad = np.stack([t, w1 * x * s], 1)
        hess = np.stack(
            [np.stack([zero, x * s], 1), np.stack([x * s, -2 * w1 * x**2 * t * s], 1)], 1
        )
    elif model == "sigmoid-unit":
        sg = 1 / (1 + np.exp(-w2 * x))
        d = sg * (1 - sg)
        f = w1 * sg
        grad = np.stack([sg, w1 * x * d], 1)
        hess = np.stack(
            [np.stack([zero, x * d], 1), np.stack([x * d, w1 * x**2 * d * (1 - 2 * sg)], 1)], 1
        )
    elif model == "linear-regression":
        f = w1 * x + w2
        grad = np.stack([x, np.ones(n)], 1)
        hess = np.zeros((n, 2, 2))
    else:
        raise AssertionError(model)
    return _gauss_newton(grad, hess, f - y)


MODELS_2P = [
    "relu-unit",
    "leaky-relu-unit",
    "linear-product",
    "tanh-unit",
    "sigmoid-unit",
    "linear-regression",
]


@pytest.mark.parametrize("model", MODELS_2P)
def test_risk_and_batch_hessians_equal_the_hand_derived_ones(model):
    x, y = _data()
    rng = np.random.default_rng(0)
    iterates = rng.uniform(-2, 2, (2, 5, 2))  # two inits x five steps
    batches = np.array([[0, 5, 5, -1], [1, 2, 3, 4], [7, -1, -1, -1], [8, 9, 10, 11], [3, 3, 3, 3]])
    result = hessians(model, (x, y), iterates, batches, "mse", lr=0.1)
    assert result.risk_hessian.shape == (2, 5, 2, 2)
    for k in range(2):
        for t in range(5):
            expect = _analytic(model, iterates[k, t], x, y)
            np.testing.assert_allclose(result.risk_hessian[k, t], expect, rtol=1e-9, atol=1e-12)
            index = batches[t][batches[t] >= 0]  # repeats count, as in the mean over the batch
            expect_b = _analytic(model, iterates[k, t], x[index], y[index])
            np.testing.assert_allclose(result.batch_hessian[k, t], expect_b, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(result.risk_eigenvalues[k, t], np.linalg.eigvalsh(expect))
    assert np.all(np.diff(result.risk_eigenvalues, axis=-1) >= 0)  # ascending
    np.testing.assert_allclose(result.lr, np.full(5, 0.1))
    np.testing.assert_allclose(result.stability_threshold, 2 / result.lambda_max)


def _grad_relu_bias(w, x, y):
    w1, w2, b = w
    z = w2 * x + b
    on = (z > 0).astype(float)
    r = w1 * np.maximum(z, 0) - y
    return 2 * np.mean(r[:, None] * np.stack([np.maximum(z, 0), w1 * x * on, w1 * on], 1), 0)


def _grad_two_relu(w, x, y):
    a1, w1, a2, w2 = w
    h1, h2 = np.maximum(w1 * x, 0), np.maximum(w2 * x, 0)
    r = a1 * h1 + a2 * h2 - y
    parts = np.stack([h1, a1 * x * (w1 * x > 0), h2, a2 * x * (w2 * x > 0)], 1)
    return 2 * np.mean(r[:, None] * parts, 0)


@pytest.mark.parametrize(
    ("model", "grad", "point"),
    [
        ("relu-unit-bias", _grad_relu_bias, [0.8, 1.3, 0.4]),
        ("two-relu-units", _grad_two_relu, [0.9, 1.1, -0.7, -1.4]),
    ],
)
def test_bigger_models_against_finite_differences_of_the_hand_gradient(model, grad, point):
    x, y = _data(n=50, seed=9)
    w = np.array(point)
    eps = 1e-6
    columns = [
        (grad(w + eps * e, x, y) - grad(w - eps * e, x, y)) / (2 * eps) for e in np.eye(w.size)
    ]
    expect = np.stack(columns, 1)
    result = hessians(model, (x, y), w[None], None, "mse")
    np.testing.assert_allclose(result.risk_hessian[0], expect, rtol=1e-5, atol=1e-6)
    assert result.batch_hessian is None


def test_diverged_iterates_give_nan_not_an_error():
    x, y = _data()
    result = hessians("tanh-unit", (x, y), np.array([[0.5, 0.5], [np.nan, np.inf]]))
    assert np.isfinite(result.risk_eigenvalues[0]).all()
    assert np.isnan(result.risk_eigenvalues[1]).all()
    assert np.isnan(result.stability_threshold[1])


def test_bad_inputs_name_the_value():
    x, y = _data()
    with pytest.raises(sgdscape.SgdscapeError, match=r"\(\.\.\., T, 2\)"):
        hessians("relu-unit", (x, y), np.zeros((3, 3)))
    with pytest.raises(sgdscape.SgdscapeError, match="between -1"):
        hessians("relu-unit", (x, y), np.zeros((1, 2)), np.array([[x.size]]))
    with pytest.raises(sgdscape.SgdscapeError, match="has 2 steps"):
        hessians("relu-unit", (x, y), np.zeros((1, 2)), np.array([[0], [1]]))
    with pytest.raises(sgdscape.SgdscapeError, match="RunResult"):
        sgdscape.curvature(object())


def test_the_relu_unit_origin_region_is_a_saddle_and_the_linear_model_is_convex():
    data = sgdscape.make_problem("linear", 64, seed=1)
    grid = sgdscape.Grid((-0.3, 0.3, 6), (-0.3, 0.3, 6))  # no point exactly at the origin
    relu = curvature_map("relu-unit", data, grid, "mse", tol=1e-6)
    # near the origin, on the side w2 > 0 where the unit is active, the Hessian is ~[[0, c], [c, 0]]
    near = np.abs(relu.w1)[None, :] < 0.1
    active = (relu.w2 > 0)[:, None]
    assert np.all(relu.mask("saddle")[near & active])
    # independent check at one point from the hand formula
    x, y = data.x.numpy().ravel().astype(np.float64), data.y.numpy().ravel().astype(np.float64)
    j, i = 4, 2
    expect = _analytic("relu-unit", (relu.w1[i], relu.w2[j]), x, y)
    np.testing.assert_allclose(relu.hessian[j, i], expect, rtol=1e-5)
    linear = curvature_map("linear-regression", data, grid, "mse")
    assert np.all(linear.mask("convex"))
    np.testing.assert_allclose(linear.lambda_max, linear.lambda_max[0, 0])  # constant Hessian


def test_classify_codes():
    values = np.array([[1.0, 2.0], [-2.0, -1.0], [-1.0, 1.0], [0.0, 1.0], [-1e-9, 1e-9]])
    assert [KINDS[k] for k in classify(values, 1e-6)] == [
        "convex",
        "concave",
        "saddle",
        "flat",
        "flat",
    ]


def test_quadratic_model_axes_and_ellipse_are_level_sets():
    h = np.array([[4.0, 1.0], [1.0, 2.0]])
    g = np.array([0.5, -1.0])
    quad = quadratic_model(h, g, 3.0, center=(1.0, -1.0), radius=0.5, n_points=64)
    lam, vec = np.linalg.eigh(h)
    # each axis endpoint sits where d^T H d / 2 = radius^2 / 2
    for k in range(2):
        d = quad.axes[k, 1] - quad.center
        assert d @ h @ d == pytest.approx(0.25)
        assert abs(d @ vec[:, k]) == pytest.approx(0.5 / np.sqrt(lam[k]))
    d = quad.ellipse - quad.center
    np.testing.assert_allclose(np.einsum("ni,ij,nj->n", d, h, d), 0.25)
    np.testing.assert_allclose(quad.newton_point, quad.center - np.linalg.solve(h, g))
    assert quad.evaluate(quad.center) == pytest.approx(3.0)
    saddle = quadratic_model(np.diag([1.0, -1.0]), np.zeros(2), 0.0)
    assert saddle.ellipse is None
    with pytest.raises(sgdscape.SgdscapeError, match=r"\(2, 2\)"):
        quadratic_model(np.eye(3), np.zeros(2), 0.0)


def test_curvature_of_a_run_result_matches_hessians():
    config = sgdscape.RunConfig(
        problem="linear", samples=40, model="tanh-unit", lr=0.05, batch_size=4, epochs=1, grid=10
    )
    result = sgdscape.run(config)
    record = sgdscape.curvature(result)
    traj = result.trajectory
    assert record.risk_hessian.shape == (*traj.iterates.shape, 2)
    x = result.data.x.numpy().ravel().astype(np.float64)
    y = result.data.y.numpy().ravel().astype(np.float64)
    for t in (0, traj.n_steps - 1):
        w = traj.iterates[..., t, :].astype(np.float64).reshape(2)
        np.testing.assert_allclose(
            record.risk_hessian.reshape(-1, 2, 2)[t], _analytic("tanh-unit", w, x, y), rtol=1e-9
        )
        index = traj.batch(t)
        np.testing.assert_allclose(
            record.batch_hessian.reshape(-1, 2, 2)[t],
            _analytic("tanh-unit", w, x[index], y[index]),
            rtol=1e-9,
        )
    np.testing.assert_allclose(record.lr, traj.lr)


@pytest.mark.parametrize("factor", [0.98, 1.02])
def test_stability_threshold_of_full_batch_gd_on_linear_regression(factor):
    """lr just below 2/lambda_max converges, just above diverges; lambda_max from the data by hand.

    R(w, b) = mean (w x + b - y)^2 has the constant Hessian 2 [[E x^2, E x], [E x, 1]] (the factor 2
    from the square), so lambda_max is twice the top eigenvalue of the second-moment matrix.
    """
    data = sgdscape.make_problem("linear", 50, seed=4)
    x = data.x.numpy().ravel().astype(np.float64)
    moment = np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])
    lambda_max = 2 * np.linalg.eigvalsh(moment)[-1]
    record = hessians("linear-regression", data, np.zeros((1, 2)))
    assert record.lambda_max[0] == pytest.approx(lambda_max, rel=1e-6)
    lr = factor * 2 / lambda_max
    traj = sgdscape.train(
        "linear-regression",
        data,
        init=torch.tensor([0.3, -0.2]),
        lr=lr,
        batch_size=data.x.shape[0],
        epochs=400,
        loss="mse",
    )
    design = np.stack([x, np.ones_like(x)], 1)
    best = np.linalg.lstsq(design, data.y.numpy().ravel().astype(np.float64), rcond=None)[0]
    start = np.linalg.norm(np.array([0.3, -0.2]) - best)
    if factor < 1:
        assert not traj.diverged
        assert np.linalg.norm(traj.final.reshape(2) - best) < 1e-3 * start
    else:
        final = traj.final.reshape(2)
        assert traj.diverged or np.linalg.norm(final - best) > 1e3 * start


def test_logistic_loss_hessian_of_the_linear_model_by_hand():
    """For l = softplus(z) - y z with z = w x + b: H = mean sigma(z) (1 - sigma(z)) [x, 1][x, 1]^T."""
    rng = np.random.default_rng(2)
    x = rng.uniform(-2, 2, 30)
    y = (x + 0.3 * rng.standard_normal(30) > 0).astype(float)
    w = np.array([[0.7, -0.2], [-1.5, 0.4]])
    result = hessians("linear-regression", (x, y), w, loss="logistic")
    for k in range(2):
        s = 1 / (1 + np.exp(-(w[k, 0] * x + w[k, 1])))
        u = np.stack([x, np.ones_like(x)], 1)
        expect = np.mean((s * (1 - s))[:, None, None] * u[:, :, None] * u[:, None, :], axis=0)
        np.testing.assert_allclose(result.risk_hessian[k], expect, rtol=1e-10)


def test_chunking_by_memory_budget_does_not_change_the_numbers():
    x, y = _data()
    iterates = np.random.default_rng(1).uniform(-2, 2, (7, 2))
    whole = hessians("tanh-unit", (x, y), iterates)
    chunked = hessians("tanh-unit", (x, y), iterates, memory_budget=1)
    np.testing.assert_array_equal(chunked.risk_hessian, whole.risk_hessian)
    grid = sgdscape.Grid((-1.0, 1.0, 4), (-1.0, 1.0, 3))
    np.testing.assert_array_equal(
        curvature_map("tanh-unit", (x, y), grid, memory_budget=1).hessian,
        curvature_map("tanh-unit", (x, y), grid).hessian,
    )


def test_map_on_a_tilted_plane_is_the_projected_hessian():
    """In a plane w = origin + a d1 + b d2 the Hessian in (a, b) is D^T H D with D = [d1 d2]."""
    x, y = _data()
    d1, d2 = torch.tensor([0.6, 0.8]), torch.tensor([-0.8, 0.6])
    plane = sgdscape.Plane(torch.tensor([0.2, -0.1]), d1, d2, ("u", "v"))
    grid = sgdscape.Grid((-1.0, 1.0, 3), (-1.0, 1.0, 3))
    result = curvature_map("tanh-unit", (x, y), grid, plane=plane)
    a, b = result.w1[2], result.w2[0]
    w = np.array([0.2, -0.1]) + a * d1.numpy() + b * d2.numpy()
    basis = np.stack([d1.numpy(), d2.numpy()], 1).astype(np.float64)
    expect = basis.T @ _analytic("tanh-unit", w, x, y) @ basis
    np.testing.assert_allclose(result.hessian[0, 2], expect, rtol=1e-6)
    assert result.labels == ("u", "v")
