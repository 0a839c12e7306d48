import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def generator() -> torch.Generator:
    """A seeded generator for test inputs (never the global one)."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def seed_data():
    import sgdscape

    return sgdscape.ground_truth(seed=0)


def _collect_quietly() -> None:
    """Collect Ray's process handles now, with warnings silenced: left to a later garbage
    collection, a handle of a still-running raylet warns inside another module's test, where
    ``filterwarnings = error`` fails that test."""
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray session (2 CPUs) for one test module; skipped cleanly without ``ray`` or
    when Ray cannot start here. Ray waits a fixed 30 s for its raylet, so on an overloaded
    machine it tries twice."""
    ray = pytest.importorskip("ray")
    for attempt in range(2):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception as error:
            ray.shutdown()
            _collect_quietly()
            if attempt == 1:
                pytest.skip(f"a local Ray could not start here: {error}")
    yield ray
    ray.shutdown()
    _collect_quietly()
