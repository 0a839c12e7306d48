"""benchmarks/bench_networks.py: the arithmetic behind each suite row's ceiling, against the
multiply-adds written out by hand for each layer."""

import pytest
import torch
from torch import nn

from repo_scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/bench_networks.py")


def test_an_mlp_forward_costs_two_flops_per_weight_per_sample(bench):
    model = nn.Sequential(nn.Linear(64, 200), nn.ReLU(), nn.Linear(200, 100), nn.Linear(100, 10))
    x = torch.zeros(37, 64)
    assert bench.layer_flops(model, x) == [2 * 37 * 64 * 200, 2 * 37 * 200 * 100, 2 * 37 * 100 * 10]


def test_a_convolution_costs_two_flops_per_kernel_tap_per_output(bench):
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.Conv2d(8, 16, 3, stride=2),
        nn.Flatten(),
        nn.LazyLinear(10),
    )
    x = torch.zeros(5, 1, 8, 8)
    model(x)  # size the lazy layer
    second_side = (8 - 3) // 2 + 1  # 3
    assert bench.layer_flops(model, x) == [
        2 * 5 * 8 * 8 * 8 * (1 * 3 * 3),
        2 * 5 * 16 * second_side**2 * (8 * 3 * 3),
        2 * 5 * (16 * second_side**2) * 10,
    ]


def test_the_ceiling_counts_every_layer_but_the_first_at_the_peak(bench):
    # 1e9 FLOPs after the first layer per point, 4 points, 2 GFLOP/s: 2 s at best; theirs 10 s
    assert bench.ceiling(10.0, [5e9, 0.6e9, 0.4e9], 4, 2.0) == pytest.approx(5.0)
