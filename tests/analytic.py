"""Closed-form priors for tests: a Gaussian and a Gaussian mixture, with exact denoisers and
posterior samplers, plus tiny MLP backbones that plug into our preconditioned wrappers."""

import math

import torch
from torch import nn


class GaussianPrior:
    """x ~ N(mu, C) on images of ``shape`` (C, H, W), flattened to d = C*H*W."""

    def __init__(self, shape, seed=0, scale=0.5):
        gen = torch.Generator().manual_seed(seed)
        self.shape = tuple(shape)
        d = math.prod(shape)
        self.mu = 0.3 * torch.randn(d, generator=gen, dtype=torch.float64)
        a = torch.randn(d, d, generator=gen, dtype=torch.float64) * scale / math.sqrt(d)
        self.cov = a @ a.T + 0.02 * torch.eye(d, dtype=torch.float64)

    @property
    def dim(self):
        return self.mu.numel()

    def sample(self, n, generator=None):
        chol = torch.linalg.cholesky(self.cov)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return (self.mu + z @ chol.T).float().reshape(n, *self.shape)

    def batch(self, size, generator):  # the PatchDataset interface
        return self.sample(size, generator)

    def posterior(self, y, sigma):
        """Mean (n, d) and covariance (d, d) of p(x | y = x + sigma n) for a batch y."""
        eye = torch.eye(self.dim, dtype=torch.float64)
        gain = self.cov @ torch.linalg.inv(self.cov + sigma**2 * eye)
        mean = self.mu + (y.reshape(y.shape[0], -1).double() - self.mu) @ gain.T
        return mean, self.cov - gain @ self.cov

    def denoise(self, x, sigma):
        """The exact denoiser E[x | x + sigma n] = mu + U diag(l / (l + sigma^2)) U^T (x - mu)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1)
        evals, evecs = torch.linalg.eigh(self.cov)
        coords = (x.reshape(x.shape[0], -1).double() - self.mu) @ evecs
        return (self.mu + (coords * evals / (evals + sigma**2)) @ evecs.T).float().reshape(x.shape)

    def __call__(self, x, sigma):
        return self.denoise(x, sigma)


class MixturePrior:
    """Two isotropic Gaussian components in d dimensions (images of shape (d, 1, 1))."""

    def __init__(self, d=2, weights=(0.3, 0.7), separation=0.8, spread=0.05):
        self.d, self.shape = d, (d, 1, 1)
        self.weights = torch.tensor(weights, dtype=torch.float64)
        self.means = torch.stack([torch.full((d,), separation), torch.full((d,), -separation)]).double()
        self.var = spread**2

    def sample(self, n, generator=None):
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        x = self.means[comp] + math.sqrt(self.var) * torch.randn(n, self.d, generator=generator, dtype=torch.float64)
        return x.float().reshape(n, *self.shape)

    def batch(self, size, generator):
        return self.sample(size, generator)

    def responsibilities(self, y, sigma):
        """Posterior component weights given y = x + sigma n, (n, 2)."""
        flat = y.reshape(y.shape[0], -1).double()
        var = self.var + torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1) ** 2
        logp = torch.stack([-(flat - m).pow(2).sum(1, keepdim=True) / (2 * var) for m in self.means], 1).squeeze(-1)
        logp = logp + self.weights.log()
        return logp.softmax(1)

    def __call__(self, x, sigma):
        flat = x.reshape(x.shape[0], -1).double()
        sigma2 = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1) ** 2
        resp = self.responsibilities(x, torch.as_tensor(sigma))
        shrink = self.var / (self.var + sigma2)
        out = sum(resp[:, k:k + 1] * (self.means[k] + shrink * (flat - self.means[k])) for k in range(2))
        return out.float().reshape(x.shape)


def _features(c_noise):
    c = c_noise.reshape(-1, 1).float()
    freqs = torch.tensor([[0.5, 1.0, 2.0, 4.0]])
    return torch.cat([c, (c * freqs).sin(), (c * freqs).cos()], dim=1)


class MLPBackbone(nn.Module):
    """F(x, c_noise) for flat tiny images."""

    def __init__(self, shape, width=64):
        super().__init__()
        self.shape, d = tuple(shape), math.prod(shape)
        self.net = nn.Sequential(nn.Linear(d + 9, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, d))

    def forward(self, x, c_noise):
        return self.net(torch.cat([x.flatten(1), _features(c_noise)], 1)).reshape(x.shape)


class MLPConditionalBackbone(nn.Module):
    """F(x, c_noise | cond, cond_noise) for flat tiny images."""

    def __init__(self, shape, width=64):
        super().__init__()
        self.shape, d = tuple(shape), math.prod(shape)
        self.net = nn.Sequential(nn.Linear(2 * d + 18, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, d))

    def forward(self, x, c_noise, cond, cond_noise):
        inputs = torch.cat([x.flatten(1), cond.flatten(1), _features(c_noise), _features(cond_noise)], 1)
        return self.net(inputs).reshape(x.shape)


class TeacherInitialisedBackbone(nn.Module):
    """A conditional backbone that starts as the analytic teacher (as ``init_from(teacher)`` does
    for UNets): F = F_teacher(x, sigma) + MLP(x, c_noise | cond, cond_noise), last layer zero.

    Recovers sigma = exp(4 c_noise) and x = input / c_in(sigma) to call the teacher.
    """

    def __init__(self, teacher, shape, width=64, sigma_data=0.5):
        super().__init__()
        self.teacher, self.sigma_data = teacher, sigma_data
        self.residual = MLPConditionalBackbone(shape, width)
        nn.init.zeros_(self.residual.net[-1].weight)
        nn.init.zeros_(self.residual.net[-1].bias)

    def forward(self, x_in, c_noise, cond, cond_noise):
        sigma = (4 * c_noise).exp().reshape(-1, 1, 1, 1)
        scale = (sigma**2 + self.sigma_data**2).sqrt()
        x = x_in * scale
        c_skip = self.sigma_data**2 / scale**2
        c_out = sigma * self.sigma_data / scale
        with torch.no_grad():
            teacher_out = (self.teacher(x, sigma.flatten()) - c_skip * x) / c_out
        return teacher_out + self.residual(x_in, c_noise, cond, cond_noise)


class GaussianPosteriorSampler:
    """The exact generative denoiser of a Gaussian prior: G(u, sigma) ~ p(x | u = x + sigma n)."""

    def __init__(self, prior: GaussianPrior):
        self.prior, self.calls = prior, 0

    def __call__(self, u, sigma, rng=None):
        self.calls += 1
        sigma = torch.as_tensor(sigma).reshape(-1)
        level = float(sigma[0])
        assert torch.all(sigma == sigma[0]), "PnP-GD uses one level per step"
        mean, cov = self.prior.posterior(u, level)
        chol = torch.linalg.cholesky(cov + 1e-12 * torch.eye(cov.shape[0], dtype=cov.dtype))
        z = torch.randn(u.shape[0], cov.shape[0], generator=rng, dtype=torch.float64)
        return (mean + z @ chol.T).float().reshape(u.shape)
