"""PSNR/SSIM against scikit-image; LPIPS from a user-given torchvision backbone file (the rest of
LPIPS is in test_lpips.py)."""

import pytest
import torch
import torchvision
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ncvsd_inverse import metrics
from ncvsd_inverse.io import read_image


@pytest.mark.parametrize("channels", [1, 3])
def test_psnr_ssim_match_scikit_image(data_dir, channels):
    clean = read_image(data_dir / "14037.png")[:, :channels, :120, :97]
    noisy = (clean + 0.1 * torch.randn_like(clean)).clamp(-1, 1)
    blurred = torch.nn.functional.avg_pool2d(clean, 3, stride=1, padding=1)
    for estimate in (noisy, blurred):
        a, b = clean[0].permute(1, 2, 0).numpy(), estimate[0].permute(1, 2, 0).numpy()
        ref_psnr = peak_signal_noise_ratio(a, b, data_range=2)
        ref_ssim = structural_similarity(a, b, data_range=2, channel_axis=2)
        assert abs(float(metrics.psnr(estimate, clean)[0]) - ref_psnr) < 1e-4
        assert abs(float(metrics.ssim(estimate, clean)[0]) - ref_ssim) < 1e-4


def test_lpips_loads_a_user_given_backbone_file(tmp_path):
    backbone = torchvision.models.alexnet()
    torch.save(backbone.state_dict(), tmp_path / "alexnet.pth")
    model = metrics.load_lpips("alex", tmp_path / "alexnet.pth")
    assert torch.equal(getattr(model.net.slice1, "0").weight, backbone.features[0].weight)
    assert torch.equal(getattr(model.net.slice5, "10").bias, backbone.features[10].bias)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.allclose(metrics.lpips(x, x, weights=tmp_path / "alexnet.pth"), torch.zeros(2), atol=1e-6)
    assert (metrics.lpips(x, torch.flip(x, [3]), weights=tmp_path / "alexnet.pth") > 0).all()
