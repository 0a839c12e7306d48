"""Slices of real networks against independent oracles.

Oracles: a deep-copied model whose parameters are set by hand
(``torch.nn.utils.vector_to_parameters``) and evaluated by its own forward; filter
normalisation written out plainly from Li et al.'s definition; ``numpy.linalg.svd``
for PCA; plain SGD updates for the recorded trajectory.
"""

import copy
import importlib.util

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import vector_to_parameters
from typer.testing import CliRunner

from sgdscape.core.grid import Grid
from sgdscape.errors import SgdscapeError
from sgdscape.networks.recording import record_training, select_steps, stochastic_view
from sgdscape.networks.slicing import (
    Directions,
    Evaluator,
    interpolation_directions,
    line_landscape,
    normalize_direction,
    parameter_layout,
    pca_directions,
    random_directions,
    slice_landscape,
)


class SmallCNN(nn.Module):
    """Not a Sequential (generic path only), with batch norm buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.head = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.norm(self.conv(x)))
        return self.head(torch.nn.functional.max_pool2d(h, 2).flatten(1))


def mlp(seed: int = 0) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 3))


def seq_cnn(seed: int = 0) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)
        )


def cnn_with_stats(seed: int = 0) -> SmallCNN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN()
        # non-trivial running statistics, as after training
        model.norm.running_mean.uniform_(-0.5, 0.5)
        model.norm.running_var.uniform_(0.5, 2.0)
    return model


@pytest.fixture
def tabular(generator):
    x = torch.randn(90, 6, generator=generator)
    y = torch.randint(0, 3, (90,), generator=generator)
    return x, y


@pytest.fixture
def images(generator):
    x = torch.randn(40, 1, 8, 8, generator=generator)
    y = torch.randint(0, 3, (40,), generator=generator)
    return x, y


def hand_set_loss(model, loss_fn, x, y, theta):
    """The oracle: a deep copy with parameters set by hand, its own forward, eval mode."""
    twin = copy.deepcopy(model).eval()
    vector_to_parameters(theta.clone(), twin.parameters())
    with torch.no_grad():
        return float(loss_fn(twin(x), y))


def state(model):
    return (
        [
            (n, t.detach().clone(), t.data_ptr())
            for n, t in model.state_dict(keep_vars=True).items()
        ],
        model.training,
        [p.requires_grad for p in model.parameters()],
    )


def assert_same_state(before, model):
    after = state(model)
    assert before[1] == after[1] and before[2] == after[2]
    for (name, tensor, pointer), (name2, tensor2, pointer2) in zip(
        before[0], after[0], strict=True
    ):
        assert name == name2 and pointer == pointer2
        assert torch.equal(tensor, tensor2), name  # bitwise


@pytest.mark.parametrize(
    ("build", "data_name", "use_algebra"),
    [
        (mlp, "tabular", True),
        (mlp, "tabular", False),
        (seq_cnn, "images", True),
        (cnn_with_stats, "images", False),
    ],
)
def test_slice_equals_hand_set_copies_at_random_grid_points(
    build, data_name, use_algebra, request, generator
):
    x, y = request.getfixturevalue(data_name)
    model = build()
    loss_fn = nn.CrossEntropyLoss()
    directions = random_directions(model, seed=3)
    grid = Grid((-1.0, 0.8, 9), (-0.6, 1.2, 7))
    surface = slice_landscape(
        model,
        loss_fn,
        (x, y),
        directions=directions,
        grid=grid,
        batch_size=32,
        use_algebra=use_algebra,
    )
    assert surface.risk.shape == (7, 9)
    w1, w2 = grid.axes()
    for _ in range(5):
        i = int(torch.randint(0, 7, (1,), generator=generator))
        j = int(torch.randint(0, 9, (1,), generator=generator))
        theta = directions.origin + float(w1[j]) * directions.d1 + float(w2[i]) * directions.d2
        expected = hand_set_loss(model, loss_fn, x, y, theta)
        assert surface.risk[i, j] == pytest.approx(expected, rel=2e-5, abs=1e-6)


def test_the_model_passed_in_is_bitwise_unchanged(images, tabular):
    model = cnn_with_stats().train()
    before = state(model)
    loss_fn = nn.CrossEntropyLoss()
    directions = random_directions(model, seed=1, include_1d=True)
    slice_landscape(model, loss_fn, images, directions=directions, grid=5, per_sample=True)
    line_landscape(model, loss_fn, images, model, cnn_with_stats(1), points=4)
    recording = record_training(model, loss_fn, images, lr=0.1, batch_size=10, epochs=1)
    stochastic_view(recording, grid=5)
    assert_same_state(before, model)

    sequential = mlp()
    before = state(sequential)
    slice_landscape(sequential, loss_fn, tabular, directions=random_directions(sequential), grid=5)
    assert_same_state(before, sequential)


def plain_filter_normalised(raw, model, include_1d=False):
    """Li et al. 2018, written out: d_ij <- d_ij / ||d_ij|| * ||theta_ij|| per filter j."""
    out, start = [], 0
    for parameter in model.parameters():
        w = parameter.detach().double()
        d = raw[start : start + w.numel()].double().reshape(w.shape).clone()
        start += w.numel()
        if w.dim() <= 1:
            if include_1d:
                d = d * (torch.linalg.norm(w) / torch.linalg.norm(d))
            else:
                d = torch.zeros_like(d)
        else:
            for j in range(w.shape[0]):
                d[j] = d[j] / torch.linalg.norm(d[j]) * torch.linalg.norm(w[j])
        out.append(d.reshape(-1))
    return torch.cat(out)


@pytest.mark.parametrize("include_1d", [False, True])
def test_filter_normalisation_against_its_definition(generator, include_1d):
    model = cnn_with_stats()
    names, shapes = parameter_layout(model)
    reference = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    raw = torch.randn(reference.numel(), generator=generator)
    got = normalize_direction(raw, reference, names, shapes, "filter", include_1d=include_1d)
    expected = plain_filter_normalised(raw, model, include_1d)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-7)

    # random_directions: every weight filter has the norm of the model's filter, 1-D parts 0
    directions = random_directions(model, seed=5)
    for d, (name, p) in zip(
        directions.as_dicts()[1].values(), model.named_parameters(), strict=True
    ):
        if p.dim() <= 1:
            assert torch.count_nonzero(d) == 0, name
        else:
            torch.testing.assert_close(
                d.reshape(p.shape[0], -1).norm(dim=1),
                p.detach().reshape(p.shape[0], -1).norm(dim=1),
            )


def test_layer_and_model_normalisation(generator):
    model = mlp()
    names, shapes = parameter_layout(model)
    reference = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    raw = torch.randn(reference.numel(), generator=generator)
    layer = normalize_direction(raw, reference, names, shapes, "layer", include_1d=True)
    start = 0
    for p in model.parameters():
        part = layer[start : start + p.numel()]
        start += p.numel()
        assert float(part.norm()) == pytest.approx(float(p.detach().norm()), rel=1e-5)
    whole = normalize_direction(raw, reference, names, shapes, "model", include_1d=True)
    assert float(whole.norm()) == pytest.approx(float(reference.norm()), rel=1e-5)
    with pytest.raises(SgdscapeError, match="unknown normalization 'bogus'"):
        normalize_direction(raw, reference, names, shapes, "bogus")


def test_pca_directions_against_numpy_svd(generator):
    model = mlp()
    p = sum(q.numel() for q in model.parameters())
    steps = torch.randn(30, p, generator=generator) * torch.linspace(2.0, 0.1, p)
    iterates = torch.cumsum(steps, dim=0).numpy().astype(np.float64)
    directions = pca_directions(model, iterates)
    _, s, vt = np.linalg.svd(iterates - iterates[-1], full_matrices=False)
    for got, want in ((directions.d1, vt[0]), (directions.d2, vt[1])):
        got = got.double().numpy()
        assert abs(float(got @ want)) == pytest.approx(1.0, abs=1e-5)  # equal up to sign
    ratio = s**2 / np.sum(s**2)
    assert directions.explained_variance == pytest.approx(tuple(ratio[:2]), rel=1e-6)
    np.testing.assert_allclose(directions.origin.numpy(), iterates[-1], rtol=1e-6)
    # the final point projects on the origin, the first on the path's PCA coordinates
    coords = directions.project(iterates)
    np.testing.assert_allclose(coords[-1], 0.0, atol=1e-4)
    expected_first = (iterates[0] - iterates[-1]) @ np.stack([vt[0], vt[1]], axis=1)
    np.testing.assert_allclose(np.abs(coords[0]), np.abs(expected_first), rtol=1e-4)


@pytest.mark.parametrize("build", [mlp, seq_cnn])
def test_first_layer_algebra_equals_generic_vmap(build, tabular, images):
    data = tabular if build is mlp else images
    model = build()
    loss_fn = nn.CrossEntropyLoss()
    directions = random_directions(model, seed=2, include_1d=True)
    fast = Evaluator(model, loss_fn, data, batch_size=16)
    slow = Evaluator(model, loss_fn, data, batch_size=16, use_algebra=False)
    assert fast.first is not None and slow.first is None
    coords = torch.rand(23, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    risk_fast, samples_fast = fast.evaluate_plane(directions, coords, per_sample=True)
    risk_slow, samples_slow = slow.evaluate_plane(directions, coords, per_sample=True)
    torch.testing.assert_close(risk_fast, risk_slow, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(samples_fast, samples_slow, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(samples_fast.mean(dim=0), risk_fast, rtol=1e-5, atol=1e-6)


def deep_mlp(seed: int = 0) -> nn.Sequential:
    """Linear layers with and without bias, several activations and dropout."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Linear(6, 12),
            nn.GELU(),
            nn.Linear(12, 7, bias=False),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(7, 3),
            nn.Tanh(),
        )


@pytest.mark.parametrize("loss_name", ["cross-entropy", "mse"])
@pytest.mark.parametrize("build", [mlp, deep_mlp])
def test_mlp_feature_major_path_equals_hand_set_copies(build, loss_name, tabular, monkeypatch):
    import sgdscape.networks.evaluation as networks

    monkeypatch.setattr(networks, "CPU_BLOCK_BYTES", 4 * 12 * 16 * 3)  # 3 points a block
    x, labels = tabular
    if loss_name == "mse":
        loss_fn: nn.Module = nn.MSELoss()
        y = torch.nn.functional.one_hot(labels, 3).float()
    else:
        loss_fn, y = nn.CrossEntropyLoss(), labels
    model = build()
    directions = random_directions(model, seed=5, include_1d=True)
    fast = Evaluator(model, loss_fn, (x, y), batch_size=16)  # 6 data batches, last one short
    slow = Evaluator(model, loss_fn, (x, y), batch_size=16, use_algebra=False)
    assert fast.mlp is not None and fast.block == 3 and slow.mlp is None
    coords = torch.rand(11, 2, generator=torch.Generator().manual_seed(1)) * 4 - 2
    coords[-1] = torch.tensor([300.0, -200.0])  # huge logits: the shifted logsumexp holds
    risk_fast, samples_fast = fast.evaluate_plane(directions, coords, per_sample=True)
    risk_slow, samples_slow = slow.evaluate_plane(directions, coords, per_sample=True)
    torch.testing.assert_close(risk_fast, risk_slow, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(samples_fast, samples_slow, rtol=1e-4, atol=1e-4)
    risk_only, none = fast.evaluate_plane(directions, coords)
    assert none is None
    torch.testing.assert_close(risk_only, risk_fast)
    for k in (0, 5, 10):
        theta = directions.origin + coords[k, 0] * directions.d1 + coords[k, 1] * directions.d2
        expected = hand_set_loss(model, loss_fn, x, y, theta)
        assert float(risk_fast[k]) == pytest.approx(expected, rel=2e-5, abs=1e-5)


def test_models_outside_the_feature_major_path_keep_their_paths(tabular, images):
    x, y = tabular
    loss_fn = nn.CrossEntropyLoss()
    assert Evaluator(seq_cnn(), loss_fn, images).mlp is None  # conv first: algebra + vmap
    normed = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 3))
    assert Evaluator(normed, loss_fn, (x, y)).mlp is None  # not elementwise
    assert Evaluator(mlp(), lambda o, t: ((o - 1.0) ** 2).mean(), (x, y)).mlp is None
    assert Evaluator(mlp(), loss_fn, (x, y)).mlp is not None


def test_dataloader_equals_tensors(tabular):
    model = mlp()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*tabular), batch_size=7)
    directions = random_directions(model, seed=4)
    loss_fn = nn.CrossEntropyLoss()
    a = slice_landscape(model, loss_fn, loader, directions=directions, grid=6)
    b = slice_landscape(model, loss_fn, tabular, directions=directions, grid=6)
    np.testing.assert_array_equal(a.risk, b.risk)


def test_interpolation_plane_and_line_hit_the_checkpoints(tabular):
    start, end = mlp(0), mlp(1)
    loss_fn = nn.CrossEntropyLoss()
    x, y = tabular
    vector = lambda m: torch.cat([p.detach().reshape(-1) for p in m.parameters()])  # noqa: E731
    loss_start = hand_set_loss(start, loss_fn, x, y, vector(start))
    loss_end = hand_set_loss(start, loss_fn, x, y, vector(end))
    directions = interpolation_directions(start, start, end, seed=0)
    surface = slice_landscape(
        start, loss_fn, tabular, directions=directions, grid=Grid((0.0, 1.0, 2), (0.0, 1.0, 3))
    )
    assert surface.risk[0, 0] == pytest.approx(loss_start, rel=1e-5)
    assert surface.risk[0, 1] == pytest.approx(loss_end, rel=1e-5)
    assert abs(float(directions.d1 @ directions.d2)) < 1e-3 * float(directions.d1.norm()) ** 2
    line = line_landscape(start, loss_fn, tabular, start, end, points=5, t_range=(0.0, 1.0))
    assert line.risk[0] == pytest.approx(loss_start, rel=1e-5)
    assert line.risk[-1] == pytest.approx(loss_end, rel=1e-5)
    middle = 0.5 * (vector(start) + vector(end))
    assert line.risk[2] == pytest.approx(hand_set_loss(start, loss_fn, x, y, middle), rel=1e-5)


def test_record_training_is_plain_sgd_on_recorded_minibatches(tabular):
    model = mlp()
    x, y = tabular
    loss_fn = nn.CrossEntropyLoss()
    recording = record_training(model, loss_fn, tabular, lr=0.2, batch_size=20, epochs=2, seed=7)
    assert recording.n_steps == 10  # 5 batches per epoch (the last holds 10)
    for epoch in range(2):
        seen = np.sort(recording.batch_indices[epoch * 5 : (epoch + 1) * 5].reshape(-1))
        np.testing.assert_array_equal(seen[seen >= 0], np.arange(90))
    twin = copy.deepcopy(model)
    for k in range(recording.n_steps):
        theta = torch.from_numpy(recording.iterates[k])
        np.testing.assert_allclose(
            theta.numpy(), torch.cat([p.detach().reshape(-1) for p in twin.parameters()]), atol=1e-6
        )
        index = torch.from_numpy(recording.batch(k))
        twin.zero_grad()
        loss = loss_fn(twin(x[index]), y[index])
        loss.backward()
        assert float(loss.detach()) == pytest.approx(float(recording.batch_loss[k]), rel=1e-5)
        with torch.no_grad():
            for p in twin.parameters():
                p -= 0.2 * p.grad
    adam = record_training(model, loss_fn, tabular, optimizer="Adam", lr=0.01, batch_size=30)
    assert adam.optimizer == "Adam" and adam.n_steps == 3


def test_small_cpu_training_runs_on_one_thread_and_restores_the_count(tabular):
    seen = []

    def sgd(params, lr):
        seen.append(torch.get_num_threads())
        return torch.optim.SGD(params, lr=lr)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        record_training(mlp(), nn.CrossEntropyLoss(), tabular, optimizer=sgd, batch_size=30)
        assert seen == [1] and torch.get_num_threads() == 2
        big = nn.Sequential(nn.Linear(6, 8192), nn.ReLU(), nn.Linear(8192, 3))
        record_training(big, nn.CrossEntropyLoss(), tabular, optimizer=sgd, max_steps=1)
        assert seen == [1, 2]  # 16k activations x 32 samples: worth two threads
    finally:
        torch.set_num_threads(before)


def test_stochastic_view_minibatch_landscapes_are_their_own_slices(tabular):
    model = mlp()
    loss_fn = nn.CrossEntropyLoss()
    recording = record_training(model, loss_fn, tabular, lr=0.3, batch_size=15, epochs=2)
    view = stochastic_view(recording, grid=7, steps=[0, 4, 11])
    directions = view.directions
    assert directions is not None and directions.kind == "pca"
    window = Grid(
        (float(view.landscape.w1[0]), float(view.landscape.w1[-1]), 7),
        (float(view.landscape.w2[0]), float(view.landscape.w2[-1]), 7),
    )
    x, y = tabular
    for k in (0, 4, 11):
        index = torch.from_numpy(recording.batch(k))
        alone = slice_landscape(
            model, loss_fn, (x[index], y[index]), directions=directions, grid=window
        )
        np.testing.assert_allclose(view.batch_landscape(k), alone.risk, rtol=1e-5, atol=1e-6)
    # path risk: the loss of the true iterates, not of their projections
    for k in (0, recording.n_steps):
        theta = torch.from_numpy(recording.iterates[k])
        assert view.risk[k] == pytest.approx(hand_set_loss(model, loss_fn, x, y, theta), rel=1e-5)
    np.testing.assert_allclose(view.path()[-1], 0.0, atol=1e-5)
    # the arrow: the minibatch gradient at the true iterate, projected on the orthonormal
    # PCA basis = directional derivatives there (central finite differences)
    k, h = 4, 1e-3
    theta = torch.from_numpy(recording.iterates[k]).double()
    index = torch.from_numpy(recording.batch(k))
    for axis, d in enumerate((directions.d1.double(), directions.d2.double())):
        slope = (
            hand_set_loss(model, loss_fn, x[index], y[index], (theta + h * d).float())
            - hand_set_loss(model, loss_fn, x[index], y[index], (theta - h * d).float())
        ) / (2 * h)
        assert view.grads_plane[k, axis] == pytest.approx(slope, rel=2e-2, abs=2e-3)
    assert view.off_plane[-1] < 1e-4 and (view.off_plane >= 0).all()
    assert view.path().shape == (recording.n_steps + 1, 2)


def test_checkpointed_run_resumes_with_only_the_missing_chunks(tabular, tmp_path, monkeypatch):
    model = mlp()
    loss_fn = nn.CrossEntropyLoss()
    directions = random_directions(model, seed=8)
    kwargs = {"directions": directions, "grid": 8, "chunk_points": 10}
    whole = slice_landscape(model, loss_fn, tabular, **kwargs)  # 64 points: 7 chunks

    class Stop(Exception):
        pass

    def stop_after_three(done, total):
        assert total == 7
        if done == 3:
            raise Stop

    with pytest.raises(Stop):
        slice_landscape(
            model, loss_fn, tabular, checkpoint_dir=tmp_path, progress=stop_after_three, **kwargs
        )
    assert len(list(tmp_path.glob("chunk_*.npz"))) == 3

    calls = []
    original = Evaluator.evaluate_plane

    def counting(self, *args, **kw):
        calls.append(1)
        return original(self, *args, **kw)

    monkeypatch.setattr(Evaluator, "evaluate_plane", counting)
    resumed = slice_landscape(model, loss_fn, tabular, checkpoint_dir=tmp_path, **kwargs)
    assert len(calls) == 4
    np.testing.assert_array_equal(resumed.risk, whole.risk)

    other = random_directions(model, seed=9)
    with pytest.raises(SgdscapeError, match="another slice"):
        slice_landscape(
            model, loss_fn, tabular, checkpoint_dir=tmp_path, **{**kwargs, "directions": other}
        )


def test_damaged_checkpoint_chunks_are_recomputed(tabular, tmp_path, monkeypatch, caplog):
    # a truncated chunk and a chunk of the wrong size are read like any archive: refused,
    # logged, and computed again; the result equals an uncheckpointed run
    model = mlp()
    loss_fn = nn.CrossEntropyLoss()
    kwargs = {"directions": random_directions(model, seed=8), "grid": 8, "chunk_points": 10}
    whole = slice_landscape(model, loss_fn, tabular, **kwargs)  # 64 points: 7 chunks
    slice_landscape(model, loss_fn, tabular, checkpoint_dir=tmp_path, **kwargs)
    first = tmp_path / "chunk_00001.npz"
    first.write_bytes(first.read_bytes()[:50])
    np.savez(tmp_path / "chunk_00002.npz", risk=np.zeros(3, np.float32))
    calls = []
    original = Evaluator.evaluate_plane

    def counting(self, *args, **kw):
        calls.append(1)
        return original(self, *args, **kw)

    monkeypatch.setattr(Evaluator, "evaluate_plane", counting)
    resumed = slice_landscape(model, loss_fn, tabular, checkpoint_dir=tmp_path, **kwargs)
    assert len(calls) == 2
    np.testing.assert_array_equal(resumed.risk, whole.risk)
    warned = [r.getMessage() for r in caplog.records if "recomputing" in r.getMessage()]
    assert len(warned) == 2 and "chunk_00002.npz" in warned[1] and "c = 10" in warned[1]

    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(SgdscapeError, match=r"unreadable manifest\.json"):
        slice_landscape(model, loss_fn, tabular, checkpoint_dir=tmp_path, **kwargs)


def test_bad_inputs_are_one_sentence_errors(tabular):
    model = mlp()
    loss_fn = nn.CrossEntropyLoss()
    directions = random_directions(model)
    with pytest.raises(SgdscapeError, match="unknown backend 'dask'"):
        slice_landscape(model, loss_fn, tabular, directions=directions, grid=4, backend="dask")
    with pytest.raises(SgdscapeError, match="another model"):
        slice_landscape(seq_cnn(), loss_fn, tabular, directions=directions, grid=4)
    with pytest.raises(SgdscapeError, match="data must be"):
        slice_landscape(model, loss_fn, torch.zeros(3), directions=directions, grid=4)
    with pytest.raises(SgdscapeError, match="unknown optimizer 'sgdd'"):
        record_training(model, loss_fn, tabular, optimizer="sgdd")
    with pytest.raises(SgdscapeError, match="batch_size must be between 1 and 90"):
        record_training(model, loss_fn, tabular, batch_size=0)
    with pytest.raises(SgdscapeError, match="has 3 values"):
        Directions.from_dicts(model, model, torch.zeros(3), None)


def test_examples_build_and_the_cli_writes_the_view(tmp_path):
    from sgdscape.networks.examples import spirals, two_moons
    from sgdscape.networks.recording import load_view
    from sgdscape.surfaces.cli import app

    x, y = two_moons(n=100, seed=1)
    assert x.shape == (100, 2) and int(y.sum()) == 50
    x, y = spirals(n=100, seed=1)
    assert x.shape == (100, 2) and int(y.sum()) == 50

    runner = CliRunner()
    out = tmp_path / "moons"
    result = runner.invoke(
        app,
        [
            "network",
            "--example",
            "moons",
            "--grid",
            "9",
            "--steps",
            "2",
            "--epochs",
            "1",
            "--out",
            str(out),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    view = load_view(out / "network.npz")
    assert view.landscape.risk.shape == (9, 9)
    assert (out / "network_step_00.png").stat().st_size > 10_000
    assert (out / f"network_step_{view.n_steps - 1:02d}.png").exists()
    bad = runner.invoke(app, ["network", "--example", "mnist", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2
    lines = [line for line in bad.output.splitlines() if line.strip()]
    assert lines == [
        "sgdscape: error: unknown example 'mnist'; choose one of: digits-mlp, digits-cnn, moons, spirals."
    ]


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="needs scikit-learn")
def test_digits_examples_load_without_download():
    from sgdscape.networks.examples import get_example

    mlp_example = get_example("digits-mlp")
    cnn_example = get_example("digits-cnn")
    assert mlp_example.x.shape == (1797, 64) and cnn_example.x.shape == (1797, 1, 8, 8)
    assert float(mlp_example.x.max()) == 1.0 and set(mlp_example.y.tolist()) == set(range(10))
    with torch.no_grad():
        assert cnn_example.model(cnn_example.x[:5]).shape == (5, 10)


def test_the_python_example_in_the_docs_runs(tmp_path, monkeypatch):
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "networks.md").read_text()
    start = text.index("```python") + len("```python")
    code = text[start : text.index("```", start)]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "docs/networks.md", "exec"), namespace)
    plt.close("all")
    assert (tmp_path / "step10.png").stat().st_size > 10_000
    assert namespace["surface"].risk.shape == (51, 51)
    for name in ("surface.html", "view.html", "view.gif", "network.npz"):
        assert (tmp_path / name).stat().st_size > 10_000, name


@pytest.mark.parametrize("example", ["moons", "digits-mlp"])
def test_mixed_precision_is_close_to_float32_and_keeps_its_own_checkpoints(example, tmp_path):
    # autocast in bfloat16 (the CPU's half type): the slice moves by about bfloat16's
    # resolution, not more; a checkpoint of one precision is never resumed by the other
    if example == "digits-mlp":
        pytest.importorskip("sklearn")
    from sgdscape.networks.examples import get_example

    case = get_example(example)
    data = (case.x, case.y)
    kwargs = dict(directions=random_directions(case.model, seed=3), grid=Grid.square(5, -1.0, 1.0))
    exact = slice_landscape(case.model, case.loss_fn, data, checkpoint_dir=tmp_path, **kwargs)
    half = slice_landscape(case.model, case.loss_fn, data, precision="bfloat16", **kwargs)
    np.testing.assert_allclose(half.risk, exact.risk, rtol=3e-2)
    assert not np.array_equal(half.risk, exact.risk)  # it did compute in bfloat16
    with pytest.raises(SgdscapeError, match="precision"):
        slice_landscape(
            case.model, case.loss_fn, data, precision="bfloat16", checkpoint_dir=tmp_path, **kwargs
        )
    with pytest.raises(SgdscapeError, match="precision"):
        slice_landscape(case.model, case.loss_fn, data, precision="fp8", **kwargs)


def test_network_cli_refuses_an_unknown_precision_in_one_line(tmp_path):
    from sgdscape.surfaces.cli import app

    result = CliRunner().invoke(
        app, ["network", "--example", "moons", "--precision", "fp8", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "sgdscape: error: unknown precision 'fp8'; choose one of: bfloat16, float16, float32."
    ]
    assert not (tmp_path / "o").exists()


def test_an_unreachable_ray_address_fails_fast_in_one_line(tmp_path):
    import socket
    import time

    from sgdscape.core.distributed import RayBackend
    from sgdscape.surfaces.cli import app

    with socket.socket() as server:  # a port that answers but is not Ray: refused too
        server.bind(("127.0.0.1", 0))
        server.listen()
        with pytest.raises(SgdscapeError, match="is not a Ray cluster"):
            RayBackend(address=f"127.0.0.1:{server.getsockname()[1]}").check_address(timeout=1)
        free_port = server.getsockname()[1]
    for address, message in (
        (f"127.0.0.1:{free_port}", "cannot reach Ray"),  # closed again: refused
        ("no-port-here", "is not HOST:PORT"),
    ):
        started = time.perf_counter()
        result = CliRunner().invoke(
            app, ["network", "--example", "moons", "--ray", address, "--out", str(tmp_path / "o")]
        )
        assert time.perf_counter() - started < 30  # before any training
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sgdscape: error:") and message in lines[0]
        assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("steps", [True, False])
def test_select_steps_rejects_a_bool_with_a_clear_error(steps: bool) -> None:
    # a bool is an int to Python: it used to reach list(True) and raise a bare TypeError
    with pytest.raises(
        SgdscapeError, match=rf"steps must be a list, a positive count or None, got {steps}"
    ):
        select_steps(steps, 10)
    assert select_steps([0, 9], 10).tolist() == [0, 9]
