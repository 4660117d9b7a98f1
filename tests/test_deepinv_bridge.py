"""Our operators inside deepinv and deepinv's physics inside our solver steps."""

import deepinv
import torch

from operators import (
    Blur,
    Inpainting,
    SuperResolution,
    from_deepinv,
    gaussian_kernel,
    measurement_to_deepinv,
    random_mask,
    to_deepinv,
)


def test_deepinv_physics_becomes_an_operator_with_an_exact_cg_step():
    physics = deepinv.physics.Inpainting(img_size=(1, 6, 6), mask=0.5, rng=torch.Generator().manual_seed(0))
    op = from_deepinv(physics)
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
    for phys in (physics, blur):
        op = from_deepinv(phys)
        assert op.closed_form_prox
        x = torch.randn(2, 3, 8, 8, generator=gen)
        y = op.forward(torch.randn(2, 3, 8, 8, generator=gen))
        s, r = torch.tensor([0.1, 0.3]), 0.5
        closed = op.likelihood_step(x, y, s, r, rng=torch.Generator().manual_seed(5))
        cg = op.cg_likelihood_step(x, y, s, r, rng=torch.Generator().manual_seed(5), tol=1e-10)
        assert torch.allclose(closed, cg, atol=1e-4), (closed - cg).abs().max()


def test_importing_operators_and_tasks_does_not_import_deepinv_or_the_package():
    import subprocess
    import sys

    code = ("import sys, operators, tasks; "
            "bad = [m for m in ('deepinv', 'ncvsd_inverse') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
