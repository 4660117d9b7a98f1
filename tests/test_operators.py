"""Operators: adjoint identities, exact likelihood samplers against dense-matrix references."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import dense_matrix

from ncvsd_inverse.operators import (
    Blur,
    Denoising,
    Inpainting,
    PhaseRetrieval,
    SuperResolution,
    box_mask,
    conjugate_gradient,
    gaussian_kernel,
    motion_kernel,
    random_mask,
)


def linear_operators(height, width):
    yield "inpainting-random", Inpainting(random_mask(height, width, 0.7, seed=1))
    yield "inpainting-box", Inpainting(box_mask(height, width))
    yield "denoising", Denoising()
    yield "blur-gaussian", Blur(gaussian_kernel(5, 1.5))
    yield "blur-motion-61", Blur(motion_kernel(61, 0.5, seed=2))  # larger than the image: wraps
    for factor in (2, 4, 8):
        for filt in ("bicubic", "box", "gaussian"):
            if min(height, width) >= factor:
                yield f"sr{factor}-{filt}", SuperResolution(factor, filt, image_size=(height, width))


@pytest.mark.parametrize("size", [(37, 53), (16, 16), (9, 31)])
@pytest.mark.parametrize("channels", [1, 3])
def test_adjoint_identity(size, channels):
    for name, op in linear_operators(*size):
        x = torch.randn(2, channels, *size, dtype=torch.float32)
        y = torch.randn_like(op.forward(x))
        lhs = (op.forward(x) * y).sum()
        rhs = (x * op.adjoint(y)).sum()
        assert abs(lhs - rhs) <= 1e-4 * max(abs(lhs), abs(rhs), 1.0), name


def test_bicubic_matches_torch_antialiased_resize():
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    for factor in (2, 4, 8):
        ours = SuperResolution(factor).forward(x)
        ref = F.interpolate(x, size=(64 // factor, 48 // factor), mode="bicubic", antialias=True)
        assert torch.allclose(ours, ref, atol=1e-5)
    assert torch.allclose(SuperResolution(4, "box").forward(x), F.avg_pool2d(x, 4), atol=1e-6)


def test_blur_is_circular_convolution_even_with_kernel_larger_than_image():
    kernel = motion_kernel(13, 0.7, seed=5)
    x = torch.randn(1, 1, 7, 9)
    ours = Blur(kernel).forward(x)[0, 0]
    ref = torch.zeros(7, 9)
    for a in range(13):
        for b in range(13):
            ref += kernel[a, b] * torch.roll(x[0, 0], shifts=(a - 6, b - 6), dims=(0, 1))
    assert torch.allclose(ours, ref, atol=1e-5)


def test_kernels():
    g = gaussian_kernel(61, 3.0)
    assert g.shape == (61, 61) and math.isclose(float(g.sum()), 1.0, rel_tol=1e-5)
    assert g[30, 30] == g.max() and torch.allclose(g, g.T)
    m1, m2, m3 = motion_kernel(61, 0.5, seed=0), motion_kernel(61, 0.5, seed=0), motion_kernel(61, 0.5, seed=1)
    assert torch.equal(m1, m2) and not torch.equal(m1, m3)
    assert math.isclose(float(m1.sum()), 1.0, rel_tol=1e-5) and (m1 >= 0).all()
    assert (m1 > 0).sum() > 61  # a path, not a dot
    with pytest.raises(ValueError, match="sum to 1"):
        Blur(torch.ones(3, 3))


def test_masks():
    mask = random_mask(20, 30, 0.7, seed=3)
    assert int((mask == 0).sum()) == round(0.7 * 600)
    assert torch.equal(mask, random_mask(20, 30, 0.7, seed=3))
    box = box_mask(256, 256)
    assert int((box == 0).sum()) == 128 * 128 and box[128, 128] == 0 and box[0, 0] == 1
    with pytest.raises(ValueError, match="0 .missing. and 1"):
        Inpainting(torch.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="mask is 4x4 but the image is 5x5"):
        Inpainting(torch.ones(4, 4)).forward(torch.zeros(1, 1, 5, 5))


def dense_posterior(op, x, y, s, r):
    """Mean and covariance of N(u; x, r^2 I) N(y; A u, s^2 I) from the dense matrix (DESIGN 3.7)."""
    shape = (1, *x.shape[1:])
    a = dense_matrix(op.forward, shape).double()
    precision = a.T @ a / s**2 + torch.eye(a.shape[1], dtype=torch.float64) / r**2
    cov = torch.linalg.inv(precision)
    mean = cov @ (a.T @ y.flatten().double() / s**2 + x.flatten().double() / r**2)
    return mean, cov


def check_moments(samples, mean, cov, label):
    n = samples.shape[0]
    flat = samples.reshape(n, -1).double()
    emp_mean = flat.mean(0)
    z = (emp_mean - mean) / (cov.diagonal() / n).sqrt()
    assert z.abs().max() < 5.5, f"{label}: mean off by {z.abs().max():.1f} standard errors"
    emp_cov = torch.cov(flat.T)
    rel = torch.linalg.norm(emp_cov - cov) / torch.linalg.norm(cov)
    assert rel < 0.1, f"{label}: covariance relative error {rel:.3f}"


EXACT_CASES = {
    "inpainting": lambda: Inpainting(random_mask(8, 8, 0.5, seed=0)),
    "denoising": lambda: Denoising(),
    "blur": lambda: Blur(gaussian_kernel(3, 0.8)),
    "blur-motion": lambda: Blur(motion_kernel(9, 0.5, seed=1)),
    "sr2": lambda: SuperResolution(2),
    "sr4-gaussian": lambda: SuperResolution(4, "gaussian"),
}


@pytest.mark.parametrize("case", sorted(EXACT_CASES))
@pytest.mark.parametrize("method", ["exact", "cg"])
def test_likelihood_step_matches_dense_reference(case, method):
    op = EXACT_CASES[case]()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 8, 8, generator=gen).clamp(-1, 1)
    y = op.forward(torch.randn(1, 1, 8, 8, generator=gen)) + 0.1 * torch.randn_like(op.forward(x))
    n = 40000
    # two halves with different (s, r) exercise per-sample tensors
    s = torch.tensor([0.3] * (n // 2) + [0.8] * (n // 2))
    r = torch.tensor([0.5] * (n // 2) + [0.2] * (n // 2))
    xs, ys = x.expand(n, -1, -1, -1), y.expand(n, -1, -1, -1)
    step = op.likelihood_step if method == "exact" else op.cg_likelihood_step
    samples = step(xs, ys, s, r, rng=gen)
    for half, (s_k, r_k) in enumerate([(0.3, 0.5), (0.8, 0.2)]):
        mean, cov = dense_posterior(op, x, y, s_k, r_k)
        check_moments(samples[half * n // 2:(half + 1) * n // 2], mean, cov, f"{case}/{method}/{half}")


def test_cg_and_exact_samplers_agree_on_large_image():
    op = SuperResolution(4)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 32, 40, generator=gen)
    y = op.forward(torch.randn(2, 3, 32, 40, generator=gen))
    exact = torch.stack([op.likelihood_step(x, y, 0.1, 0.3, rng=gen) for _ in range(300)])
    cg = torch.stack([op.cg_likelihood_step(x, y, 0.1, 0.3, rng=gen) for _ in range(300)])
    assert (exact.mean(0) - cg.mean(0)).abs().max() < 0.12  # 300 draws, per-pixel std <= 0.3
    assert abs(float(exact.std(0).mean() / cg.std(0).mean()) - 1) < 0.03


def test_conjugate_gradient_solves_per_sample_systems():
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    spd = m @ m.T + torch.eye(6, dtype=torch.float64)
    scales = torch.tensor([1.0, 10.0], dtype=torch.float64).reshape(2, 1)
    b = torch.randn(2, 6, generator=gen, dtype=torch.float64)
    x = conjugate_gradient(lambda v: scales * (v @ spd), b, tol=1e-10)
    for k in range(2):
        assert torch.allclose(x[k], torch.linalg.solve(scales[k] * spd, b[k]), atol=1e-8)


def test_langevin_matches_gaussian_mean_and_reduces_phase_retrieval_misfit():
    op = Blur(gaussian_kernel(3, 0.8))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 8, 8, generator=gen)
    y = op.forward(torch.randn(1, 1, 8, 8, generator=gen))
    samples = op.langevin_likelihood_step(x.expand(4000, -1, -1, -1), y.expand(4000, -1, -1, -1),
                                          0.3, 0.5, rng=gen)
    mean, cov = dense_posterior(op, x, y, 0.3, 0.5)
    assert (samples.reshape(4000, -1).double().mean(0) - mean).abs().max() < 0.05
    # ULA with c1 = 0.5 inflates the variance a little, never by much
    ratio = samples.reshape(4000, -1).double().var(0) / cov.diagonal()
    assert 0.85 < float(ratio.mean()) < 1.5

    pr = PhaseRetrieval(2.0)
    truth = torch.rand(2, 1, 12, 12, generator=gen) * 2 - 1
    y = pr.forward(truth)
    start = (truth + 0.5 * torch.randn(truth.shape, generator=gen)).clamp(-1, 1)
    u = pr.likelihood_step(start, y, s=0.01, r=1.0, rng=gen)
    assert pr.forward(start).shape == (2, 1, 24, 24)
    assert (pr.misfit(u, y) < 0.5 * pr.misfit(start, y)).all()
    with pytest.raises(NotImplementedError, match="not linear"):
        pr.adjoint(y)


def test_pseudo_inverses_reproduce_the_measurement(data_dir):
    from ncvsd_inverse.io import read_image

    x = read_image(data_dir / "108005.png")[..., 100:124, 100:132]
    for op in (SuperResolution(4), Inpainting(random_mask(24, 32)), Blur(gaussian_kernel(5, 1.0))):
        y = op.forward(x)
        residual = torch.linalg.norm(op.forward(op.pseudo_inverse(y)) - y) / torch.linalg.norm(y)
        assert residual < 0.02, type(op).__name__


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_operators_run_on_gpu():
    x = torch.randn(2, 3, 37, 53, device="cuda")
    for name, op in linear_operators(37, 53):
        u = op.likelihood_step(x, op.forward(x), 0.1, 0.2)
        assert u.device.type == "cuda" and u.shape == x.shape, name


def test_classical_estimates(data_dir):
    """Bicubic upsampling, biharmonic inpainting (near-exact on linear ramps away from the border,
    known pixels kept) and Wiener deconvolution (near-exact without noise for an invertible blur)."""
    from ncvsd_inverse.io import read_image

    x = read_image(data_dir / "108005.png")[..., 100:124, 100:132]
    sr = SuperResolution(4)
    y = sr.forward(x)
    assert torch.allclose(sr.classical_estimate(y, 0.05), F.interpolate(y, scale_factor=4, mode="bicubic"))
    assert SuperResolution(4, image_size=(26, 33)).classical_estimate(y[..., :6, :8], 0.05).shape[-2:] == (26, 33)

    rows, cols = torch.meshgrid(torch.linspace(-1, 1, 24), torch.linspace(-1, 1, 32), indexing="ij")
    ramp = torch.stack([0.6 * rows - 0.3 * cols, 0.2 * cols, -0.5 * rows])[None].repeat(2, 1, 1, 1)
    inpaint = Inpainting(random_mask(24, 32, 0.7, seed=3))
    filled = inpaint.classical_estimate(inpaint.forward(ramp), 0.05)
    assert filled.shape == ramp.shape and filled.dtype == ramp.dtype
    assert (filled - ramp)[..., 4:-4, 4:-4].abs().max() < 0.01
    assert (filled - ramp).abs().mean() < 0.02 * (inpaint.pseudo_inverse(inpaint.forward(ramp)) - ramp).abs().mean()
    noisy = inpaint.measure(x, 0.05, torch.Generator().manual_seed(0))  # noisy at missing pixels too
    known = inpaint.forward(noisy)
    assert torch.allclose(inpaint.forward(inpaint.classical_estimate(known, 0.05)), known, atol=1e-6)

    kernel = torch.tensor([[0.0, 0.1, 0.0], [0.1, 0.6, 0.1], [0.0, 0.1, 0.0]])  # |OTF| >= 0.2
    blur = Blur(kernel)
    assert (blur.classical_estimate(blur.forward(x), 1e-4) - x).abs().max() < 1e-3
    assert (blur.classical_estimate(blur.forward(x), 0.05) - x).abs().max() > 1e-2  # regularised


def test_hio_real_fft_projection_equals_the_full_fft_one_on_noisy_magnitudes():
    """HIO's magnitude projection on real FFTs equals ``Re IFFT(y FFT(g) / |FFT(g)|)`` even for
    noisy (not Hermitian-symmetric) magnitudes, on odd and even grids."""
    from ncvsd_inverse.operators.phase_retrieval import hermitian_magnitude, magnitude_projection

    rng = torch.Generator().manual_seed(0)
    for size in ((16, 16), (15, 22)):
        g = torch.rand(2, 3, *size, generator=rng, dtype=torch.float64)
        y = torch.rand(2, 3, *size, generator=rng, dtype=torch.float64)
        spectrum = torch.fft.fft2(g, norm="ortho")
        reference = torch.fft.ifft2(y * torch.exp(1j * spectrum.angle()), norm="ortho").real
        half = hermitian_magnitude(y)[..., : size[1] // 2 + 1]
        assert torch.allclose(magnitude_projection(g, half), reference, atol=1e-12)
        assert not torch.allclose(hermitian_magnitude(y), y)  # the noise was not symmetric


def test_hybrid_input_output_recovers_a_noise_free_image_and_keeps_the_best_restart():
    """Fienup's HIO + error reduction, the classical phase-retrieval baseline: on a small smooth
    image without noise it finds the image (up to its 180-degree twin) to the last digit; with
    noise, of its random starts it keeps the lowest data misfit, never the truth's choice."""
    from ncvsd_inverse.metrics import psnr
    from ncvsd_inverse.operators import PhaseRetrieval
    from ncvsd_inverse.operators.phase_retrieval import hybrid_input_output

    torch.manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 20, 20), 5, 1)
    x = (x - x.min()) / (x.max() - x.min()) * 1.6 - 0.8
    operator = PhaseRetrieval(2.0)
    y = operator.forward(x)
    estimate = operator.classical_estimate(y, 0.0)
    assert max(float(psnr(estimate, x)), float(psnr(estimate.flip(-1, -2), x))) > 60
    noisy = operator.measure(x, 0.05, torch.Generator().manual_seed(1))
    chosen = operator.classical_estimate(noisy, 0.05, rng=torch.Generator().manual_seed(2))
    rng = torch.Generator().manual_seed(2)
    starts = [hybrid_input_output(noisy, x.shape, (32, 32), rng=rng) for _ in range(4)]
    misfits = torch.stack([operator.misfit(s, noisy) for s in starts])
    assert torch.equal(chosen, starts[int(misfits.argmin())])


def test_the_twin_has_the_same_magnitudes_and_alignment_picks_the_closer_orientation():
    """The 180-degree twin is phase retrieval's trivial ambiguity: the operator cannot tell it
    from the image. ``align_twins`` turns exactly the images whose twin is closer to the reference."""
    from ncvsd_inverse.operators.phase_retrieval import align_twins, twin, twin_is_closer

    torch.manual_seed(0)
    x = torch.rand(3, 3, 12, 10) * 2 - 1
    operator = PhaseRetrieval(2.0)
    assert torch.allclose(operator.forward(twin(x)), operator.forward(x), atol=1e-5)
    assert not torch.allclose(twin(x), x)
    mixed = torch.stack([x[0], twin(x)[1], x[2]])
    assert twin_is_closer(mixed, x).tolist() == [False, True, False]
    assert torch.equal(align_twins(mixed, x), x)
    runs = torch.stack([x[:1], twin(x[:1])])  # (runs, N, C, H, W): the second run landed on the twin
    assert torch.equal(align_twins(runs, runs[:1]), torch.stack([x[:1], x[:1]]))


def test_channel_twins_are_put_in_the_first_channels_orientation():
    """HIO solves each colour channel on its own, so channels land on the image or its twin
    independently; aligning them by their correlation restores one orientation, whichever the
    first channel has, and leaves an aligned image as it is."""
    from ncvsd_inverse.operators.phase_retrieval import align_channel_twins, twin

    torch.manual_seed(0)
    base = torch.nn.functional.avg_pool2d(torch.rand(2, 1, 20, 20), 5, 1)
    image = torch.cat([base, 0.8 * base + 0.05 * torch.randn_like(base), 1.2 * base - 0.1], 1)
    mixed = torch.cat([image[:, :1], twin(image[:, 1:2]), image[:, 2:]], 1)
    assert torch.equal(align_channel_twins(mixed), image)
    turned_first = torch.cat([twin(image[:, :1]), image[:, 1:2], twin(image[:, 2:])], 1)
    assert torch.equal(align_channel_twins(turned_first), twin(image))
    assert torch.equal(align_channel_twins(image), image)
