"""One problem-setup path: the CLI, the API and the benchmarks pose problems the same way;
deepinv users solve with their own physics and measurement; the samplers' callback."""

import deepinv
import pytest
import torch

from ncvsd_inverse import solve
from ncvsd_inverse.operators import (
    ImageTooSmallError,
    Inpainting,
    SuperResolution,
    measurement_to_deepinv,
    random_mask,
    to_deepinv,
)
from ncvsd_inverse.problem import MIN_CLEAN_SIZE, Problem, pose_problem, simulate_problem
from ncvsd_inverse.tasks import TaskError, load_task


def test_pose_problem_builds_the_operator_and_checks_once():
    y = torch.randn(2, 3, 8, 10)
    problem = pose_problem(y, "sr4x", steps=7, likelihood_scale=0.1)
    assert isinstance(problem.operator, SuperResolution) and problem.clean_shape == (2, 3, 32, 40)
    assert problem.settings["steps"] == 7 and problem.settings["likelihood_scale"] == 0.1
    with pytest.raises(ImageTooSmallError, match=f"at least {MIN_CLEAN_SIZE}x{MIN_CLEAN_SIZE}"):
        pose_problem(torch.zeros(1, 3, 1, 1), "sr4x")
    with pytest.raises(ValueError, match="needs about .* GiB"):  # 4096x4096 x 64 chains of state
        pose_problem(torch.zeros(1, 3, 1024, 1024), "sr4x", runs=64)
    with pytest.raises(ValueError, match="unknown sampler setting 'stepz'"):
        pose_problem(y, "sr4x", stepz=3)


def test_simulate_problem_crops_to_what_the_measurement_determines():
    clean = torch.rand(1, 3, 35, 42) * 2 - 1
    problem, cropped = simulate_problem(clean, "sr4x", seed=3)
    assert cropped.shape[-2:] == (32, 40) and problem.measurement.shape[-2:] == (8, 10)
    again, _ = simulate_problem(clean, "sr4x", seed=3)
    assert torch.equal(problem.measurement, again.measurement)  # seeded
    expected = problem.operator.measure(cropped, 0.05, torch.Generator().manual_seed(3))
    assert torch.equal(problem.measurement, expected)


def test_a_task_of_unknown_type_is_an_error_not_phase_retrieval():
    task = load_task("sr4x")
    task.operator["type"] = "warp"  # bypassing validation, as code holding a Task could
    with pytest.raises(TaskError, match="'warp' is not one of"):
        task.build_operator((1, 3, 16, 16))


def test_a_posed_problem_carries_its_own_settings(tiny_models):
    problem = pose_problem(torch.zeros(1, 3, 4, 4), "sr4x", steps=2)
    with pytest.raises(ValueError, match="carries its own"):
        solve(problem, model=tiny_models[1], steps=3)


def test_callback_sees_every_step(tiny_models):
    seen = []
    result = solve(torch.zeros(1, 3, 4, 4), "sr4x", model=tiny_models[1], steps=3, runs=2, callback=seen.append)
    assert [info["i"] for info in seen] == [0, 1, 2] and result.nfe == 3
    assert seen[0]["sigma"] > seen[0]["sigma_next"] == seen[1]["sigma"]
    assert seen[-1]["estimate"].shape == (2, 3, 16, 16)
    assert torch.equal(seen[-1]["estimate"], result.samples.reshape(2, 3, 16, 16))


@pytest.mark.parametrize("which", ["inpainting", "sr"])
def test_deepinv_physics_and_measurement_solve_the_same_problem(tiny_models, which):
    """A deepinv user's physics and [0, 1] measurement give, in [0, 1], the posterior our own
    operator gives for the same problem (same prior; compared over many runs)."""
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(1, 3, 16, 16, generator=gen) * 2 - 1
    if which == "inpainting":
        mask = random_mask(16, 16, 0.5, seed=1)
        ours = Inpainting(mask)
        physics = deepinv.physics.Inpainting(img_size=(3, 16, 16), mask=mask[None].expand(3, -1, -1).clone())
        task, extra = "random_inpainting", {"mask": mask}
    else:
        ours = SuperResolution(2, image_size=(16, 16))
        physics = to_deepinv(ours)
        task, extra = "sr2x", {}
    physics.noise_model = deepinv.physics.GaussianNoise(sigma=0.025)
    y = ours.measure(clean, 0.05, gen)
    y_d = measurement_to_deepinv(ours, y, clean.shape)
    settings = {"steps": 4, "runs": 48, "prior": "teacher", "model": tiny_models[0], "init": "zero"}
    theirs = solve(y_d, physics=physics, task=task, seed=1, **settings)
    mine = solve(y, task, seed=2, **extra, **settings)
    assert theirs.mean.min() >= -0.5 and theirs.samples.shape == mine.samples.shape
    # same posterior: the [0, 1] mean matches ours mapped to [0, 1] within the runs' noise
    gap = ((theirs.mean - (mine.mean + 1) / 2).abs().mean())
    spread = (mine.std / 2).mean() / 48**0.5
    assert gap < 4 * spread + 0.01, (float(gap), float(spread))
    assert torch.allclose((theirs.std).mean(), (mine.std / 2).mean(), rtol=0.15)
    with pytest.raises(ValueError, match="belongs to the deepinv physics"):
        solve(y_d, physics=physics, mask=torch.ones(16, 16))


def test_problem_moves_to_a_device():
    problem = pose_problem(torch.zeros(1, 3, 4, 4, dtype=torch.float64), "sr4x")
    assert problem.measurement.dtype == torch.float32
    assert isinstance(problem.to("cpu"), Problem)


def test_guards_name_the_problem(tiny_models):
    """Non-finite prior steps stop the sampler naming the step; s and r must be > 0; a CUDA
    device this machine lacks is one clear error."""
    from ncvsd_inverse.api import resolve_device
    from ncvsd_inverse.sampling import NonFiniteError, pnp_sigmas, posterior_sample

    op = Inpainting(random_mask(8, 8, 0.5))
    y = torch.zeros(1, 3, 8, 8)

    def broken_prior(u, sigma, rng=None):
        return u * float("nan") if float(sigma[0]) < 10 else u

    with pytest.raises(NonFiniteError, match=r"step \d+ of 5 \(sigma"):
        posterior_sample(broken_prior, op, y, pnp_sigmas(5), 0.05)
    for s, r in ((0.0, 0.1), (0.1, -1.0), (float("nan"), 0.1)):
        with pytest.raises(ValueError, match="must be finite and > 0"):
            op.likelihood_step(y, y, s, r)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu0")
