"""PnP-GD against the analytic Gaussian posterior; NFE accounting; seeds; unconditional generation."""

import warnings

import pytest
import torch
from analytic import GaussianPosteriorSampler, GaussianPrior, MixturePrior
from conftest import dense_matrix

from ncvsd_inverse.operators import Inpainting, SuperResolution, random_mask
from ncvsd_inverse.sampling import (
    DenoiserPrior,
    GenerativePrior,
    SwitchedPrior,
    ancestral_posterior_sample,
    generate,
    pnp_sigmas,
    posterior_sample,
)


def analytic_posterior(prior, op, y, s):
    """p(x | y) for y = A x + s n and x ~ N(mu, C)."""
    a = dense_matrix(op.forward, (1, *prior.shape)).double()
    precision = torch.linalg.inv(prior.cov) + a.T @ a / s**2
    cov = torch.linalg.inv(precision)
    mean = cov @ (torch.linalg.solve(prior.cov, prior.mu) + a.T @ y.flatten().double() / s**2)
    return mean, cov


def pnp_errors(prior, op, y, s, steps, chains=3000):
    sampler = GenerativePrior(GaussianPosteriorSampler(prior))
    gen = torch.Generator().manual_seed(3)
    result = posterior_sample(sampler, op, y, pnp_sigmas(steps, 80.0, 0.002, 2.0), likelihood_scale=s,
                              runs=chains, rng=gen)
    draws = result.samples[:, 0].reshape(chains, -1).double()
    mean, cov = analytic_posterior(prior, op, y, s)
    mean_err = float(((draws.mean(0) - mean) / cov.diagonal().sqrt()).abs().max())
    cov_err = float(torch.linalg.norm(torch.cov(draws.T) - cov) / torch.linalg.norm(cov))
    return mean_err, cov_err, result


@pytest.mark.parametrize("name", ["inpainting", "sr2x"])
def test_pnp_gd_approaches_the_gaussian_posterior(name):
    prior = GaussianPrior((1, 8, 8), seed=2, scale=1.0)
    op = Inpainting(random_mask(8, 8, 0.6, seed=1)) if name == "inpainting" else SuperResolution(2, image_size=(8, 8))
    gen = torch.Generator().manual_seed(0)
    s = 0.1
    y = op.forward(prior.sample(1, gen)) + s * torch.randn(op.forward(prior.sample(1, gen)).shape, generator=gen)
    errors = {steps: pnp_errors(prior, op, y, s, steps)[:2] for steps in (10, 50, 200, 1000)}
    # PnP-GD is an annealed split-Gibbs sampler: it approaches p(x | y) as the steps grow.
    totals = [sum(errors[steps]) for steps in (10, 50, 200, 1000)]
    assert totals == sorted(totals, reverse=True), errors
    # stated tolerances (3000 chains; sampling noise alone is ~0.07 std in the mean, ~0.1 in the
    # covariance): at the default 50 steps the mean is within 2 posterior stds per pixel and the
    # covariance within 30 %; at 1000 steps within 0.3 std and 15 %.
    assert errors[50][0] < 2.0 and errors[50][1] < 0.3, errors
    assert errors[1000][0] < 0.3 and errors[1000][1] < 0.15, errors
    result = pnp_errors(prior, op, y, s, 50)[2]
    assert result.nfe == 50 and result.network_calls == 50


def test_ancestral_sampler_of_a_denoiser_draws_the_gaussian_posterior():
    prior = GaussianPrior((1, 4, 4), seed=2, scale=1.0)
    gen = torch.Generator().manual_seed(0)
    sigma, chains = 0.5, 4000
    y = prior.sample(1, gen) + sigma * torch.randn((1, 1, 4, 4), generator=gen)
    mean, cov = prior.posterior(y, sigma)

    def errors(steps):
        draws = ancestral_posterior_sample(prior, y.expand(chains, -1, -1, -1), sigma, steps,
                                           rng=torch.Generator().manual_seed(1)).reshape(chains, -1).double()
        mean_err = float(((draws.mean(0) - mean[0]) / cov.diagonal().sqrt()).abs().max())
        return mean_err, float(torch.linalg.norm(torch.cov(draws.T) - cov) / torch.linalg.norm(cov))

    few, many = errors(4), errors(256)
    # 4 plug-in steps lose most of the posterior variance; 256 are exact up to sampling noise
    # (4000 chains: ~0.05 posterior std in the mean, a few % in the covariance).
    assert few[1] > 0.5 and many[0] < 0.1 and many[1] < 0.1, (few, many)


def test_ancestral_sampler_finds_both_modes_of_a_mixture_posterior():
    mixture = MixturePrior(d=2)
    y, sigma, chains = torch.full((1, 2, 1, 1), 0.1), 0.6, 8000
    draws = ancestral_posterior_sample(mixture, y.expand(chains, -1, -1, -1), sigma, 64,
                                       rng=torch.Generator().manual_seed(1))
    first_mode = float((draws.reshape(chains, -1).mean(1) > 0).double().mean())
    assert abs(first_mode - float(mixture.responsibilities(y, sigma)[0, 0])) < 0.02
    with pytest.raises(ValueError, match="at least 2"):
        ancestral_posterior_sample(mixture, y, sigma, 1)


def test_nfe_counts_actual_network_calls_and_runs_are_batched():
    prior = GaussianPrior((1, 4, 4))
    model = GaussianPosteriorSampler(prior)
    op = Inpainting(random_mask(4, 4, 0.5))
    y = op.forward(prior.sample(2))
    result = posterior_sample(GenerativePrior(model), op, y, pnp_sigmas(7), likelihood_scale=0.05, runs=3)
    assert model.calls == 7 == result.nfe == result.network_calls
    assert result.samples.shape == (3, 2, 1, 4, 4) and result.mean.shape == (2, 1, 4, 4)
    assert torch.allclose(result.std, result.samples.std(0, unbiased=False))


def test_seeds_and_restarts():
    prior = GaussianPrior((1, 4, 4))
    op = Inpainting(random_mask(4, 4, 0.5))
    y = op.forward(prior.sample(1))

    def run(seed, **kw):
        return posterior_sample(GenerativePrior(GaussianPosteriorSampler(prior)), op, y, pnp_sigmas(5), 0.05,
                                rng=torch.Generator().manual_seed(seed), **kw)

    assert torch.equal(run(1).samples, run(1).samples)
    assert not torch.equal(run(1).samples, run(2).samples)
    best = run(1, runs=2, restarts=3)
    assert best.samples.shape == (2, 1, 1, 4, 4) and best.misfit.shape == (2, 1)
    # the kept chain has the lowest misfit among its restarts
    everything = run(1, runs=6)
    misfits = ((op.forward(everything.samples[:, 0]) - y) ** 2).flatten(1).sum(1).reshape(3, 2)
    assert torch.allclose(best.misfit[:, 0], misfits.min(0).values, rtol=1e-5)


def test_teacher_ablation_and_generation():
    prior = GaussianPrior((1, 4, 4))
    op = Inpainting(random_mask(4, 4, 0.5))
    y = op.forward(prior.sample(1))
    ablation = DenoiserPrior(prior)
    result = posterior_sample(ablation, op, y, pnp_sigmas(4), 0.05, runs=2)
    assert result.nfe == 4 and ablation.calls == 4

    class CountingGenerator:
        calls = 0

        def __call__(self, y, sigma, rng=None):
            self.calls += 1
            return torch.full_like(y, float(self.calls))

    one_step, three_steps = CountingGenerator(), CountingGenerator()
    assert generate(one_step, (2, 3, 8, 8)).shape == (2, 3, 8, 8) and one_step.calls == 1
    assert torch.all(generate(three_steps, (1, 3, 4, 4), ts=[80, 10, 1]) == 3)  # the last of 3 evaluations


def test_switched_prior_hands_over_at_its_level():
    """The hybrid chain: the upper prior step at levels >= the switch, the lower one below it."""
    prior = GaussianPrior((1, 4, 4))
    op = Inpainting(random_mask(4, 4, 0.5))
    y = op.forward(prior.sample(1))
    seen = {"above": [], "below": []}

    def recording(name):
        def step(u, sigma, rng=None):
            seen[name].append(float(sigma[0]))
            return torch.zeros_like(u)
        return step

    sigmas = pnp_sigmas(6, 80.0, 0.002, 2.0)
    switch = float(sigmas[3])
    result = posterior_sample(SwitchedPrior(recording("above"), recording("below"), switch), op, y, sigmas, 0.05)
    assert seen["above"] == pytest.approx(sigmas[:4].tolist()) and seen["below"] == pytest.approx(sigmas[4:6].tolist())
    assert result.nfe == 6
    hybrid = SwitchedPrior(DenoiserPrior(prior), GenerativePrior(GaussianPosteriorSampler(prior)), 1.0)
    assert posterior_sample(hybrid, op, y, sigmas, 0.05).network_calls == 6 == hybrid.calls
    with pytest.raises(ValueError, match="switch_sigma"):
        SwitchedPrior(DenoiserPrior(prior), DenoiserPrior(prior), 0.0)


def test_solve_takes_a_prior_step(tiny_models):
    """``solve(prior=step)``: a step built by hand runs the same chain as the named prior, a
    hybrid's counts add up, and what a step carries itself (model, teacher, tiles) is refused."""
    from ncvsd_inverse import load_model, solve

    generator, teacher = load_model(tiny_models[1], device="cpu"), load_model(tiny_models[0], "teacher", device="cpu")
    y = torch.rand(1, 3, 8, 8) * 2 - 1
    named = solve(y, "sr4x", model=generator, steps=4, runs=2, seed=3, device="cpu", precision="float32")
    by_hand = solve(y, "sr4x", prior=GenerativePrior(generator, 3, "float32"), steps=4, runs=2, seed=3, device="cpu")
    assert torch.equal(named.samples, by_hand.samples) and by_hand.nfe == 4
    hybrid = SwitchedPrior(DenoiserPrior(teacher, 3, "float32"), GenerativePrior(generator, 3, "float32"), 1.0)
    result = solve(y, "sr4x", prior=hybrid, steps=6, device="cpu")
    assert result.network_calls == 6 == hybrid.calls and 0 < hybrid.below.calls < 6
    for given, match in (({"model": generator}, "do not pass model="), ({"teacher": teacher}, "do not pass teacher="),
                         ({"tile": 64}, "do not pass tile=")):
        with pytest.raises(ValueError, match=match):
            solve(y, "sr4x", prior=hybrid, steps=2, device="cpu", **given)
    with pytest.raises(ValueError, match="prior must be 'ncvsd', 'teacher' or a prior step"):
        solve(y, "sr4x", prior="diffusion", steps=2, device="cpu")


def test_bfloat16_network_stays_close_to_float32_and_returns_float32(tiny_models):
    from ncvsd_inverse import load_model, solve

    generator = load_model(tiny_models[1], device="cpu")
    y = torch.rand(1, 3, 8, 8) * 2 - 1

    def run(precision, seed=1):
        return solve(y, "sr4x", model=generator, steps=5, seed=seed, device="cpu", precision=precision)

    full, half, other_seed = run("float32"), run("bfloat16"), run("float32", seed=2)
    assert half.mean.dtype == torch.float32 and half.nfe == 5
    rounding = float((full.mean - half.mean).abs().mean())
    assert rounding > 0  # the network did run in bfloat16
    # same seed: the same sample up to rounding, far closer than another sample
    assert rounding < 0.1 * float((full.mean - other_seed.mean).abs().mean())
    with pytest.raises(ValueError, match="precision must be one of auto, float32, bfloat16"):
        GenerativePrior(generator, 3, precision="float16")


def test_initial_image_choices():
    from ncvsd_inverse.problem import pose_problem

    y = torch.randn(1, 3, 8, 8)
    for init in ("zero", "pseudo_inverse", "classical"):
        problem = pose_problem(y, "sr2x", init=init)
        op = problem.operator
        expected = {"zero": None, "pseudo_inverse": op.pseudo_inverse(y), "classical": op.classical_estimate(y, 0.05)}
        start = problem.initial_image()
        assert start is None if init == "zero" else torch.equal(start, expected[init])


def test_emulated_bfloat16_warns(monkeypatch, tiny_models):
    from ncvsd_inverse import load_model, machine

    generator = load_model(tiny_models[1], device="cpu")
    y = torch.zeros(1, 3, 8, 8)
    for native, warns in ((False, True), (True, False)):
        monkeypatch.setattr(machine, "native_bfloat16", lambda device_type="cpu", n=native: n)
        machine.warn_emulated_bfloat16.cache_clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            GenerativePrior(generator, 3, precision="bfloat16")(y, torch.full((1,), 0.5))
        assert any("not native" in str(w.message) for w in caught) == warns


def test_auto_precision_is_bfloat16_only_where_it_is_native(monkeypatch):
    from ncvsd_inverse import machine, sampling

    monkeypatch.setattr(machine, "native_bfloat16", lambda device_type="cpu": device_type == "cuda")
    assert machine.resolve_precision("auto", "cpu") == "float32"
    assert machine.resolve_precision("auto", "cuda") == "bfloat16"
    assert machine.resolve_precision("float32", "cuda") == "float32"
    assert machine.resolve_precision("bfloat16", "cpu") == "bfloat16"
    with pytest.raises(ValueError, match="precision must be one of auto, float32, bfloat16"):
        machine.resolve_precision("half", "cpu")
    calls = []
    monkeypatch.setattr(torch, "autocast", lambda *args, **kwargs: calls.append(kwargs["dtype"]) or _NoContext())
    prior = sampling.DenoiserPrior(lambda u, sigma: u, 3)  # precision "auto" by default
    prior(torch.zeros(1, 3, 8, 8), torch.ones(1))
    assert calls == []  # float32 on this "CPU"
    monkeypatch.setattr(machine, "native_bfloat16", lambda device_type="cpu": True)
    prior(torch.zeros(1, 3, 8, 8), torch.ones(1))
    assert calls == [torch.bfloat16]


class _NoContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


CPUINFO_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx avx2 fma

processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx avx2 fma
"""


def test_cpu_description_and_native_bfloat16_come_from_cpuinfo(monkeypatch):
    """The machine a benchmark names and the bf16 decision read the same flags: AVX2 alone is
    float32, AVX512-BF16 (or AMX-BF16) is native bfloat16."""
    from ncvsd_inverse import machine

    assert machine.parse_cpu_info(CPUINFO_AVX2) == ("AMD EPYC 7B13", frozenset({"fpu", "sse2", "avx", "avx2", "fma"}))
    assert machine.parse_cpu_info("") == ("", frozenset())
    bf16 = CPUINFO_AVX2.replace("avx2 fma", "avx2 fma avx512f avx512_bf16")
    for text, described, native in ((CPUINFO_AVX2, "AMD EPYC 7B13 (avx2)", False),
                                    (bf16, "AMD EPYC 7B13 (avx2, avx512f, avx512_bf16)", True),
                                    ("model name : Old\nflags : sse2\n", "Old (no AVX2)", False)):
        monkeypatch.setattr(machine, "cpu_info", lambda t=text: machine.parse_cpu_info(t))
        machine.native_bfloat16.cache_clear()
        assert machine.cpu_model() == described
        assert machine.native_bfloat16("cpu") is native
        assert machine.describe_machine("cpu")["native_bfloat16"] is native
        assert machine.machine_summary("cpu").startswith(described + ", ")
    machine.native_bfloat16.cache_clear()
