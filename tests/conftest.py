from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)


@pytest.fixture
def data_dir() -> Path:
    return DATA


def dense_matrix(forward, shape) -> torch.Tensor:
    """The matrix of a linear map on images of ``shape`` (1, C, H, W), built column by column."""
    n = int(torch.tensor(shape).prod())
    basis = torch.eye(n).reshape(n, *shape[1:])
    return forward(basis).reshape(n, -1).T  # (m, n)
