import math

import pytest
import torch

import sgdscape
from sgdscape import Model, SgdscapeError


def test_relu_unit_gradient_matches_the_analytic_derivative(generator):
    w = torch.empty(50, 2).uniform_(-3, 3, generator=generator)
    x = torch.empty(50).uniform_(-1, 1, generator=generator)
    y = 2 * x + 0.1 * torch.randn(50, generator=generator)
    model = sgdscape.get_model("relu-unit")
    w = w.requires_grad_(True)
    loss = (model(w, x[:, None].T.reshape(-1)) - y).pow(2)  # (50 inits, 50 samples)
    # one sample per init: take the diagonal so each row has its own sample
    per_init = loss.diagonal()
    (grad,) = torch.autograd.grad(per_init.sum(), w)
    w1, w2 = w.detach()[:, 0], w.detach()[:, 1]
    residual = w1 * torch.clamp(w2 * x, min=0) - y
    active = (w2 * x > 0).float()
    expected = torch.stack(
        [2 * residual * torch.clamp(w2 * x, min=0), 2 * residual * w1 * x * active], dim=1
    )
    torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-6)


INDEPENDENT = {
    "relu-unit": lambda p, x: p[0] * max(p[1] * x, 0.0),
    "linear-product": lambda p, x: p[0] * p[1] * x,
    "tanh-unit": lambda p, x: p[0] * math.tanh(p[1] * x),
    "sigmoid-unit": lambda p, x: p[0] / (1 + math.exp(-p[1] * x)),
    "leaky-relu-unit": lambda p, x: p[0] * (p[1] * x if p[1] * x > 0 else 0.1 * p[1] * x),
    "relu-unit-bias": lambda p, x: p[0] * max(p[1] * x + p[2], 0.0),
    "two-relu-units": lambda p, x: p[0] * max(p[1] * x, 0.0) + p[2] * max(p[3] * x, 0.0),
    "linear-regression": lambda p, x: p[0] * x + p[1],
}


def test_every_registered_model_has_an_independent_oracle():
    assert set(INDEPENDENT) == set(sgdscape.MODELS)


@pytest.mark.parametrize("name", sorted(INDEPENDENT))
def test_model_values_and_gradients_against_a_scalar_implementation(name, generator):
    model = sgdscape.get_model(name)
    w = torch.empty(4, model.n_params, dtype=torch.float64).uniform_(-2, 2, generator=generator)
    x = torch.empty(6, dtype=torch.float64).uniform_(-1, 1, generator=generator)
    predictions = model(w, x)
    assert predictions.shape == (4, 6)
    for k in range(4):
        for i in range(6):
            assert float(predictions[k, i]) == pytest.approx(
                INDEPENDENT[name](w[k].tolist(), float(x[i])), rel=1e-12, abs=1e-12
            )
    # gradient of the summed squared loss against central finite differences
    y = torch.linspace(-1, 1, 6, dtype=torch.float64)
    w0 = w[1].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(((model(w0, x) - y) ** 2).sum(), w0)
    eps = 1e-6
    for j in range(model.n_params):
        step = torch.zeros_like(w0)
        step[j] = eps
        plus = sum(
            (INDEPENDENT[name]((w0 + step).tolist(), float(xi)) - float(yi)) ** 2
            for xi, yi in zip(x, y, strict=True)
        )
        minus = sum(
            (INDEPENDENT[name]((w0 - step).tolist(), float(xi)) - float(yi)) ** 2
            for xi, yi in zip(x, y, strict=True)
        )
        assert float(grad[j]) == pytest.approx((plus - minus) / (2 * eps), rel=1e-4, abs=1e-6)


def test_models_broadcast_over_leading_dimensions(generator):
    model = sgdscape.get_model("relu-unit")
    w = torch.randn(3, 5, 2, generator=generator)
    x = torch.randn(7, generator=generator)
    out = model(w, x)
    assert out.shape == (3, 5, 7)
    torch.testing.assert_close(out[2, 4], model(w[2, 4], x))


def test_init_rule_is_the_seeds_uniform(generator):
    draws = sgdscape.get_model("relu-unit").init(10_000, generator=generator)
    assert draws.shape == (10_000, 2)
    assert draws.min() >= -0.1 and draws.max() <= 0.1
    assert abs(float(draws.mean())) < 0.005


def test_module_model_matches_the_module_and_leaves_it_unchanged(generator):
    net = torch.nn.Sequential(torch.nn.Linear(1, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    model = Model.from_module(net)
    w = sgdscape.module_parameters(net)
    x = torch.randn(9, generator=generator)
    torch.testing.assert_close(model(w, x), net(x[:, None]).reshape(-1).detach())
    batched = torch.stack([w, w + 0.1])
    assert model(batched, x).shape == (2, 9)
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key])


def test_function_model_and_errors():
    model = Model.from_function(lambda w, x: w[..., 0, None] * x + w[..., 1, None], ["a", "b"])
    torch.testing.assert_close(
        model(torch.tensor([2.0, 1.0]), torch.tensor([3.0])), torch.tensor([7.0])
    )
    with pytest.raises(SgdscapeError, match=r"unknown model 'nope'.*relu-unit"):
        sgdscape.get_model("nope")
    with pytest.raises(SgdscapeError, match="takes 2 parameters"):
        sgdscape.get_model("relu-unit")(torch.zeros(3), torch.zeros(4))


@pytest.mark.parametrize("name", sorted(sgdscape.LOSSES))
def test_losses_against_torch_functional(name, generator):
    prediction = torch.randn(20, generator=generator) * 3
    target = (
        (torch.rand(20, generator=generator) < 0.5).float()
        if name == "logistic"
        else torch.randn(20, generator=generator)
    )
    functional = torch.nn.functional
    expected = {
        "mse": functional.mse_loss(prediction, target, reduction="none"),
        "mae": functional.l1_loss(prediction, target, reduction="none"),
        "huber": functional.huber_loss(prediction, target, reduction="none", delta=1.0),
        "logistic": functional.binary_cross_entropy_with_logits(
            prediction, target, reduction="none"
        ),
    }[name]
    torch.testing.assert_close(sgdscape.get_loss(name)(prediction, target), expected)
