"""Networks: any size, teacher initialisation, no spatial statistics, the key identity (DESIGN 3.2)."""

import math

import pytest
import torch
import torch.nn.functional as F
from analytic import GaussianPrior

from ncvsd_inverse.edm import denoising_posterior
from ncvsd_inverse.networks import (
    Block,
    ConditionalDenoiser,
    Discriminator,
    GenerativeDenoiser,
    InputConcatUNet,
    UNetConfig,
    build_teacher,
    mp_silu,
    mp_sum,
    normalize,
)
from ncvsd_inverse.sampling import multistep_sample

TINY = UNetConfig(img_channels=3, model_channels=8, channel_mult=(1, 2), num_blocks=1)


def test_any_image_size_and_gray():
    teacher = build_teacher(TINY).eval()
    for shape in [(2, 3, 37, 53), (1, 3, 5, 9), (1, 3, 64, 64)]:
        x = torch.randn(shape)
        assert teacher(x, 0.5).shape == shape
    gray = build_teacher(UNetConfig(img_channels=1, model_channels=8, channel_mult=(1, 2), num_blocks=1)).eval()
    assert gray(torch.randn(1, 1, 17, 11), torch.tensor([0.3])).shape == (1, 1, 17, 11)


def test_conditional_networks_start_as_the_teacher():
    teacher = build_teacher(TINY).eval()
    x, y = torch.randn(2, 3, 24, 20), torch.randn(2, 3, 24, 20)
    cond = ConditionalDenoiser.init_from(teacher).eval()
    assert torch.allclose(cond(x, 0.7, y, 0.2), teacher(x, 0.7), atol=1e-6)
    generator = GenerativeDenoiser(ConditionalDenoiser.init_from(teacher, "cond")).eval()
    z = torch.randn_like(y)
    sigma_hat = 0.2 * (1 + generator.gamma)
    expected = teacher(y + (sigma_hat**2 - 0.04) ** 0.5 * z, sigma_hat)
    assert torch.allclose(generator(y, 0.2, z=z), expected, atol=1e-5)
    sample, logvar = generator(y, torch.tensor([0.2, 0.4]), return_logvar=True)
    assert sample.shape == y.shape and logvar.shape == (2, 1, 1, 1)
    steps = []
    assert multistep_sample(generator, y, 0.2, [1.0, 0.5, 0.1], callback=steps.append).shape == y.shape
    assert [info["t"] for info in steps] == [1.0, 0.5, 0.1]
    assert Discriminator.init_from(teacher)(x, 0.5, y, 0.2).shape == (2,)


def test_concatenation_variant_starts_as_the_teacher_then_sees_the_condition():
    teacher = build_teacher(TINY).eval()
    with torch.no_grad():
        teacher.backbone.decoder.out_gain.fill_(1.0)  # a fresh UNet outputs zeros
    x, y, other_y = torch.randn(2, 3, 24, 20), torch.randn(2, 3, 24, 20), torch.randn(2, 3, 24, 20)
    net = ConditionalDenoiser.init_from(teacher, "cond", condition="concat").eval()
    assert isinstance(net.backbone, InputConcatUNet)
    with torch.no_grad():
        assert torch.allclose(net(x, 0.7, y, 0.2), teacher(x, 0.7), atol=1e-6)
        net.backbone.cond_gain.fill_(1.0)  # as training opens the gain
        assert not torch.allclose(net(x, 0.7, y, 0.2), net(x, 0.7, other_y, 0.2), atol=1e-3)
    with pytest.raises(ValueError, match="condition must be one of"):
        ConditionalDenoiser.init_from(teacher, "cond", condition="cross-attention")


def test_no_spatial_statistics():
    """Far-away content does not change a pixel's output (no norm over H x W)."""
    teacher = build_teacher(TINY).eval()
    big = torch.randn(1, 3, 96, 96)
    changed = big.clone()
    changed[..., :20, :] = torch.randn(1, 3, 20, 96) * 5  # far from the centre
    with torch.no_grad():
        a, b = teacher(big, 0.5), teacher(changed, 0.5)
    assert torch.allclose(a[..., 56:72, 40:56], b[..., 56:72, 40:56], atol=1e-6)
    assert not torch.allclose(a[..., :8, :], b[..., :8, :])


def test_key_identity_gives_the_denoising_posterior_mean():
    """D(y_eff, sigma_eff) = E[x | y, x_t] for a Gaussian prior (DESIGN 3.2)."""
    prior = GaussianPrior((1, 2, 3), seed=4)
    gen = torch.Generator().manual_seed(0)
    x = prior.sample(5, gen)
    sigma, t = 0.3, torch.tensor([0.1, 0.5, 1.0, 2.0, 10.0]).reshape(-1, 1, 1, 1)
    y = x + sigma * torch.randn(x.shape, generator=gen)
    x_t = x + t * torch.randn(x.shape, generator=gen)
    y_eff, sigma_eff = denoising_posterior(y, torch.tensor(sigma), x_t, t)
    ours = prior.denoise(y_eff, sigma_eff.flatten()).reshape(5, -1).double()
    # joint Gaussian conditioning on both observations
    eye = torch.eye(prior.dim, dtype=torch.float64)
    prec_prior = torch.linalg.inv(prior.cov)
    for i in range(5):
        precision = prec_prior + eye / sigma**2 + eye / float(t[i]) ** 2
        rhs = prec_prior @ prior.mu + y[i].flatten().double() / sigma**2 + x_t[i].flatten().double() / float(t[i]) ** 2
        assert torch.allclose(ours[i], torch.linalg.solve(precision, rhs), atol=1e-5)


def _plain_block_forward(block: Block, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """EDM2's residual block written out term by term: the reference for the fused one."""
    if block.resample == "down":
        x = F.avg_pool2d(x, 2)
    elif block.resample == "up":
        x = F.interpolate(x, scale_factor=2, mode="nearest")
    if block.flavor == "enc":
        if block.conv_skip is not None:
            x = block.conv_skip(x)
        x = normalize(x, dim=1)
    y = block.conv_res0(mp_silu(x))
    scale = block.emb_linear(emb, gain=block.emb_gain) + 1
    y = block.conv_res1(mp_silu(y * scale[:, :, None, None]))
    if block.flavor == "dec" and block.conv_skip is not None:
        x = block.conv_skip(x)
    t = block.res_balance
    return (x.lerp(y, t) / math.sqrt((1 - t) ** 2 + t**2)).clip(-block.clip_act, block.clip_act)


@pytest.mark.parametrize("flavor,resample,channels", [("enc", "keep", (8, 16)), ("enc", "down", (8, 8)),
                                                      ("dec", "up", (8, 8)), ("dec", "keep", (16, 8))])
@pytest.mark.parametrize("batch", [1, 3])
def test_fused_block_computes_edm2s_block(flavor, resample, channels, batch):
    """The block folds its constant factors into the convolutions' weights (issue 18): the same
    function as the term-by-term formula, for one image or several."""
    torch.manual_seed(0)
    block = Block(*channels, emb_channels=12, flavor=flavor, resample=resample).eval()
    with torch.no_grad():
        block.emb_gain.fill_(0.7)
    x, emb = torch.randn(batch, channels[0], 16, 12), torch.randn(batch, 12)
    with torch.no_grad():
        fused, plain = block(x, emb), _plain_block_forward(block, x, emb)
    assert fused.shape == plain.shape
    torch.testing.assert_close(fused, plain, atol=2e-6, rtol=1e-5)
    x.requires_grad_(True)  # and it trains the same: equal gradients
    grad_fused, = torch.autograd.grad(block.train()(x, emb).square().sum(), x)
    grad_plain, = torch.autograd.grad(_plain_block_forward(block, x, emb).square().sum(), x)
    torch.testing.assert_close(grad_fused, grad_plain, atol=1e-5, rtol=1e-4)


def test_mp_sum_is_edm2s_magnitude_preserving_blend():
    a, b = torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)
    for t in (0.0, 0.3, 0.5, 1.0):
        expected = ((1 - t) * a + t * b) / math.sqrt((1 - t) ** 2 + t**2)
        torch.testing.assert_close(mp_sum(a, b, t), expected)
