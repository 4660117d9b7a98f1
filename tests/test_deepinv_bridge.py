"""Our operators inside deepinv and deepinv's physics inside our solver steps."""

import subprocess
import sys

import deepinv
import pytest
import torch

from ncvsd_inverse import solve
from ncvsd_inverse.io import read_image
from ncvsd_inverse.metrics import psnr
from ncvsd_inverse.operators import (
    Blur,
    DeepinvOperator,
    Denoising,
    Inpainting,
    SuperResolution,
    from_deepinv,
    gaussian_kernel,
    measurement_from_deepinv,
    measurement_to_deepinv,
    random_mask,
    to_deepinv,
)
from ncvsd_inverse.problem import Problem
from ncvsd_inverse.tasks import load_task, task_from_dict


def test_deepinv_physics_becomes_an_operator_with_an_exact_cg_step():
    physics = deepinv.physics.Inpainting(img_size=(1, 6, 6), mask=0.5, rng=torch.Generator().manual_seed(0))
    op = DeepinvOperator(physics)
    op.closed_form_prox = False
    x = torch.randn(2, 1, 6, 6)
    y = torch.randn_like(op.forward(x))
    assert torch.allclose((op.forward(x) * y).sum(), (x * op.adjoint(y)).sum(), rtol=1e-4)
    # the CG step of the wrapped physics matches our own exact inpainting sampler in mean
    ours = Inpainting(physics.mask[0, 0])
    gen = torch.Generator().manual_seed(1)
    xs, ys = x[:1].expand(20000, -1, -1, -1), y[:1].expand(20000, -1, -1, -1)
    wrapped = op.likelihood_step(xs, ys, 0.2, 0.5, rng=gen)
    exact = ours.likelihood_step(xs, ys, 0.2, 0.5, rng=gen)
    assert (wrapped.mean(0) - exact.mean(0)).abs().max() < 0.03
    assert (wrapped.std(0) / exact.std(0) - 1).abs().max() < 0.05


def test_our_operator_in_deepinv_sees_the_same_measurement():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 16, 16, generator=gen) * 2 - 1
    for op in (SuperResolution(2, image_size=(16, 16)), Blur(gaussian_kernel(5, 1.0)),
               Inpainting(random_mask(16, 16, 0.5))):
        physics = to_deepinv(op, sigma_y=0.05)
        assert abs(float(physics.adjointness_test(x))) < 1e-4
        y = op.forward(x)
        x_deepinv = (x + 1) / 2
        assert torch.allclose(measurement_to_deepinv(op, y, x.shape), physics.A(x_deepinv), atol=1e-5)
        assert abs(physics.noise_model.sigma.item() - 0.025) < 1e-7


def test_closed_form_prox_step_equals_the_cg_step():
    """For a DecomposablePhysics the likelihood step is deepinv's closed-form prox_l2 at the
    perturbed inputs: with the same noise it is the CG solution of the same system."""
    gen = torch.Generator().manual_seed(0)
    physics = deepinv.physics.Inpainting(img_size=(3, 8, 8), mask=0.6, rng=torch.Generator().manual_seed(1))
    blur = deepinv.physics.BlurFFT(img_size=(3, 8, 8), filter=deepinv.physics.blur.gaussian_blur(sigma=(1.0, 1.0)))
    down = deepinv.physics.Downsampling(img_size=(3, 8, 8), filter="bicubic", factor=2, padding="circular")
    for phys in (physics, blur, down):
        op = DeepinvOperator(phys)
        assert op.closed_form_prox
        x = torch.randn(2, 3, 8, 8, generator=gen)
        y = op.forward(torch.randn(2, 3, 8, 8, generator=gen))
        s, r = torch.tensor([0.1, 0.3]), 0.5
        closed = op.likelihood_step(x, y, s, r, rng=torch.Generator().manual_seed(5))
        cg = op.cg_likelihood_step(x, y, s, r, rng=torch.Generator().manual_seed(5), tol=1e-10)
        assert torch.allclose(closed, cg, atol=1e-4), (closed - cg).abs().max()


def test_importing_operators_and_tasks_does_not_import_deepinv_or_the_networks():
    code = ("import sys, ncvsd_inverse.operators, ncvsd_inverse.tasks; "
            "light = ('ncvsd_inverse', 'ncvsd_inverse.files', 'ncvsd_inverse.operators', 'ncvsd_inverse.tasks'); "
            "bad = [m for m in sys.modules if m == 'deepinv' or (m.startswith('ncvsd_inverse') "
            "and m not in light and not m.startswith('ncvsd_inverse.operators.'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


SIZE = 64
KERNEL = torch.rand(5, 5, generator=torch.Generator().manual_seed(3)) + torch.eye(5)  # asymmetric
KERNEL = KERNEL / KERNEL.sum()
MASK = random_mask(SIZE, SIZE, 0.5, seed=4)
TWINS = {  # deepinv physics -> (our twin, the task whose sampler settings a user would pick)
    "inpainting": (lambda: deepinv.physics.Inpainting(img_size=(3, SIZE, SIZE), mask=MASK.expand(3, -1, -1).clone()),
                   Inpainting(MASK), "random_inpainting"),
    "blur_fft": (lambda: deepinv.physics.BlurFFT(img_size=(3, SIZE, SIZE), filter=KERNEL[None, None]),
                 Blur(KERNEL), "gaussian_deblur"),
    "blur_circular": (lambda: deepinv.physics.Blur(filter=KERNEL[None, None], padding="circular"),
                      Blur(KERNEL), "motion_deblur"),
    "denoising": (lambda: deepinv.physics.Denoising(), Denoising(), "denoise"),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_a_physics_with_a_native_twin_becomes_it_with_the_same_forward_model(name):
    make_physics, twin, _ = TWINS[name]
    physics = make_physics()
    operator = from_deepinv(physics)
    assert type(operator) is type(twin)
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(operator.forward(x), physics.A(x), atol=1e-6)


def test_physics_without_a_twin_stay_wrapped():
    valid_blur = deepinv.physics.Blur(filter=KERNEL[None, None], padding="valid")
    down = deepinv.physics.Downsampling(img_size=(3, SIZE, SIZE), filter="bicubic", factor=4, padding="circular")
    grey_mask = deepinv.physics.Inpainting(img_size=(3, 8, 8), mask=torch.full((3, 8, 8), 0.5))
    for physics in (valid_blur, down, grey_mask):
        assert type(from_deepinv(physics)) is DeepinvOperator


def tiger_crop() -> torch.Tensor:
    from ncvsd_inverse.api import DEFAULT_MODEL_DIR

    return read_image(DEFAULT_MODEL_DIR.parent / "data" / "examples" / "tiger.png")[..., 96:96 + SIZE, 96:96 + SIZE]


@pytest.mark.parametrize("name", sorted(TWINS))
def test_solve_with_a_deepinv_physics_equals_the_native_operator(name):
    """The issue's case: a deepinv user's measurement solved through ``physics=`` and our own
    operator's solve of the same clean image, mask/kernel, noise and seed agree (the twins
    make them the same computation; the test asks for 0.3 dB)."""
    make_physics, twin, task_name = TWINS[name]
    physics = make_physics()
    physics.noise_model = deepinv.physics.GaussianNoise(sigma=0.02)
    clean = tiger_crop()
    y_d = physics.A((clean + 1) / 2) + 0.02 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(5))
    theirs = solve(y_d, physics=physics, task=task_name, seed=0, precision="float32")
    task = load_task(task_name)
    task = task_from_dict({**task.to_dict(), "sigma_y": 0.04})
    ours = solve(Problem(task, twin, measurement_from_deepinv(physics, y_d)), seed=0, precision="float32")
    gap = float(psnr(theirs.mean * 2 - 1, clean)) - float(psnr(ours.mean, clean))
    assert abs(gap) < 0.3, gap
    assert theirs.settings == ours.settings


def test_deepinv_downsampling_solves_as_well_as_our_sr_and_a_physics_without_a_classical_start_runs_from_noise():
    clean = tiger_crop()
    noise = 0.05 * torch.randn(1, 3, SIZE // 4, SIZE // 4, generator=torch.Generator().manual_seed(5))
    physics = deepinv.physics.Downsampling(img_size=(3, SIZE, SIZE), filter="bicubic", factor=4, padding="circular",
                                           noise_model=deepinv.physics.GaussianNoise(sigma=0.025))
    theirs = solve(physics.A((clean + 1) / 2) + noise / 2, physics=physics, task="sr4x", runs=4, seed=0,
                   precision="float32")
    ours = solve(SuperResolution(4).forward(clean) + noise, "sr4x", runs=4, seed=0, precision="float32")
    gap = float(psnr(theirs.mean * 2 - 1, clean)) - float(psnr(ours.mean, clean))
    assert abs(gap) < 0.3, gap
    with pytest.warns(UserWarning, match="no native twin"):
        fallback = solve(physics.A((clean + 1) / 2), physics=physics, task="random_inpainting", seed=0, steps=2,
                         precision="float32")
    assert fallback.settings["init"] == "zero" and fallback.settings["sigma_max"] == 80.0
    assert fallback.settings["steps"] == 2  # the user's own settings still win
