"""The Ray backend against the local one: equal results, a killed actor, resumed checkpoints.

Needs ``ray`` (``sgdscape[ray]``); skipped cleanly without it. One local Ray session
(``ray.init(num_cpus=2)``) serves the whole module.
"""

import numpy as np
import pytest
import torch
from torch import nn

from sgdscape.networks.slicing import random_directions, slice_landscape

pytestmark = [
    pytest.mark.slow,
    # Ray's own process handles (raylet, GCS) may be collected while still running
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(scope="module")
def problem():
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
    x = torch.randn(120, 8, generator=generator)
    y = torch.randint(0, 3, (120,), generator=generator)
    directions = random_directions(model, seed=1)
    kwargs = {"directions": directions, "grid": 12, "chunk_points": 16}  # 144 points, 9 chunks
    local = slice_landscape(model, nn.CrossEntropyLoss(), (x, y), per_sample=True, **kwargs)
    return model, (x, y), kwargs, local


def test_ray_backend_equals_local_and_survives_a_killed_actor(local_ray, problem, tmp_path):
    from sgdscape.core.distributed import RayBackend

    model, data, kwargs, local = problem
    backend = RayBackend(num_actors=2)
    killed = []

    def kill_one(done, total):
        if done == 2 and not killed:
            killed.append(backend.actors[0])
            local_ray.kill(backend.actors[0])  # dies mid-run, with a chunk in flight

    surface = slice_landscape(
        model,
        nn.CrossEntropyLoss(),
        data,
        backend=backend,
        progress=kill_one,
        per_sample=True,
        checkpoint_dir=tmp_path,
        **kwargs,
    )
    assert killed and backend.failures >= 1
    np.testing.assert_array_equal(surface.risk, local.risk)
    np.testing.assert_array_equal(surface.sample_loss, local.sample_loss)
    assert len(list(tmp_path.glob("chunk_*.npz"))) == 9


def test_interrupted_ray_run_resumes_from_its_checkpoints(local_ray, problem, tmp_path):
    from sgdscape.core.distributed import RayBackend

    model, data, kwargs, local = problem

    class Stop(Exception):
        pass

    def stop(done, total):
        if done == 4:
            raise Stop

    with pytest.raises(Stop):
        slice_landscape(
            model,
            nn.CrossEntropyLoss(),
            data,
            backend=RayBackend(num_actors=1),
            progress=stop,
            per_sample=True,
            checkpoint_dir=tmp_path,
            **kwargs,
        )
    assert len(list(tmp_path.glob("chunk_*.npz"))) == 4
    seen = []
    surface = slice_landscape(
        model,
        nn.CrossEntropyLoss(),
        data,
        backend="ray",
        per_sample=True,
        progress=lambda done, total: seen.append(done),
        checkpoint_dir=tmp_path,
        **kwargs,
    )
    assert seen == [4, 5, 6, 7, 8, 9]  # resumed at 4, only the five missing chunks computed
    np.testing.assert_array_equal(surface.risk, local.risk)
