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
