"""Task presets: load, build operators at any size, YAML round trip, errors naming key and file."""

import pytest
import yaml

from ncvsd_inverse.operators import ImageTooSmallError, Inpainting, SuperResolution
from ncvsd_inverse.tasks import TaskError, available_tasks, load_task, task_from_dict

EXPECTED = {"sr4x", "sr2x", "box_inpainting", "random_inpainting", "gaussian_deblur", "motion_deblur",
            "phase_retrieval", "denoise"}


def test_all_presets_load_and_build(tmp_path):
    assert EXPECTED <= set(available_tasks())
    for name in available_tasks():
        task = load_task(name)
        assert task.name == name and task.sigma_y == 0.05
        assert 1 <= task.sampler["steps"] <= 50 and task.sampler["rho"] in (2.0, 4.0, 7.0)
        if task.sampler["init"] == "zero":  # chains from noise: 20 steps (tuning rounds 10, 12 and 13)
            expected = (20, 7.0, 10.0) if name == "motion_deblur" else (20, 4.0, 80.0)
            assert (task.sampler["steps"], task.sampler["rho"], task.sampler["sigma_max"]) == expected, name
        for shape in [(1, 3, 256, 256), (2, 1, 37, 53)]:
            op = task.build_operator(shape)
            y = op.forward(__import__("torch").zeros(shape))
            assert y.shape[0] == shape[0]
        path = tmp_path / f"{name}.yaml"
        path.write_text(task.to_yaml())
        assert load_task(path).to_dict() == task.to_dict()
    assert load_task("phase_retrieval").sampler["restarts"] == 4
    for name in ("sr4x", "gaussian_deblur", "motion_deblur"):  # 50 steps at rho 2 (tuning round 14)
        assert load_task(name).schedules == {50: {"rho": 2.0}}
    for name in ("random_inpainting", "box_inpainting"):  # tuned: a short chain redrawing biharmonic
        sampler = load_task(name).sampler
        assert sampler["init"] == "classical" and sampler["sigma_max"] <= 0.5 and sampler["steps"] <= 20
    op = load_task("sr4x").build_operator((1, 3, 256, 256))
    assert isinstance(op, SuperResolution) and op.factor == 4
    box = load_task("box_inpainting").build_operator((1, 3, 256, 256))
    assert isinstance(box, Inpainting) and int((box.mask == 0).sum()) == 128 * 128


def write_preset(tmp_path, mutate):
    data = load_task("sr4x").to_dict()
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(colour="red"), "unknown key 'colour'"),
    (lambda d: d["operator"].update(factr=4), "unknown key 'operator.factr'"),
    (lambda d: d["operator"].update(factor=0), r"'operator.factor' = 0 is out of range"),
    (lambda d: d["operator"].update(filter="lanczos"), r"'operator.filter' = 'lanczos' is out of range"),
    (lambda d: d["sampler"].update(steps="many"), "'sampler.steps' must be int"),
    (lambda d: d["sampler"].update(ema_decay=1.5), r"'sampler.ema_decay' = 1.5 is out of range"),
    (lambda d: d["sampler"].update(sigma_min=100.0), "'sampler.sigma_min' must be below"),
    (lambda d: d.update(sigma_y=-1), "'sigma_y' = -1 is out of range"),
    (lambda d: d["operator"].update(type="warp"), "'operator.type' = 'warp'"),
    (lambda d: d.pop("operator"), "missing key 'operator'"),
    (lambda d: d.update(schedules=[50]), "'schedules' must be a mapping of step counts"),
    (lambda d: d.update(schedules={20: {"rho": 2.0}}), r"'schedules.20': .* other than 'sampler.steps' \(20\)"),
    (lambda d: d.update(schedules={0: {"rho": 2.0}}), r"'schedules.0': a schedule's key is a number of steps >= 1"),
    (lambda d: d.update(schedules={50: {"steps": 40}}), "'schedules.50' must be a mapping of sampler settings"),
    (lambda d: d.update(schedules={50: {"rh": 2.0}}), "unknown key 'schedules.50.rh'"),
    (lambda d: d.update(schedules={50: {"rho": -1.0}}), r"'schedules.50.rho' = -1.0 is out of range"),
    (lambda d: d.update(schedules={50: {"sigma_min": 100.0}}), "'schedules.50.sigma_min' must be below"),
])
def test_bad_presets_name_key_and_file(tmp_path, mutate, message):
    path = write_preset(tmp_path, mutate)
    with pytest.raises(TaskError, match=message) as error:
        load_task(path)
    assert str(path) in str(error.value)


def test_other_load_errors(tmp_path):
    with pytest.raises(TaskError, match="unknown task 'sr5x'; available: .*sr4x"):
        load_task("sr5x")
    (tmp_path / "broken.yaml").write_text("name: [unclosed")
    with pytest.raises(TaskError, match="not valid YAML"):
        load_task(tmp_path / "broken.yaml")
    with pytest.raises(TaskError, match="no such task file"):
        load_task(tmp_path / "absent.yaml")
    with pytest.raises(TaskError, match="missing key 'operator.mask'"):
        task_from_dict({"name": "x", "sigma_y": 0.05, "operator": {"type": "inpainting"}}, "mine.yaml")


def test_image_too_small_for_task():
    with pytest.raises(ImageTooSmallError, match="too small"):
        load_task("sr4x").build_operator((1, 3, 3, 40))
    with pytest.raises(TaskError, match="takes no mask"):
        load_task("sr4x").build_operator((1, 3, 16, 16), mask=__import__("torch").ones(16, 16))


def test_phase_retrieval_preset_sets_the_langevin_steps():
    task = load_task("phase_retrieval")
    data = task.to_dict()
    data["operator"]["langevin_steps"] = 7
    assert task_from_dict(data, "pr.yaml").build_operator((1, 3, 16, 16)).langevin_steps == 7
    data["operator"]["langevin_steps"] = 0
    with pytest.raises(TaskError, match="'operator.langevin_steps' = 0 is out of range"):
        task_from_dict(data, "pr.yaml")


def test_a_schedule_replaces_the_settings_at_its_step_count_only(tmp_path):
    from ncvsd_inverse.problem import with_sampler_settings

    base = load_task("sr4x")
    task = task_from_dict({**base.to_dict(), "schedules": {50: {"rho": 2.0, "ema_sigma": 1.0, "ema_decay": 0.6}}})
    path = tmp_path / "mine.yaml"
    path.write_text(task.to_yaml())
    assert load_task(path).schedules == {50: {"rho": 2.0, "ema_sigma": 1.0, "ema_decay": 0.6}}
    at_50 = with_sampler_settings(task, 50).sampler
    assert at_50 == {**base.sampler, "steps": 50, "rho": 2.0, "ema_sigma": 1.0, "ema_decay": 0.6}
    assert with_sampler_settings(task, 10).sampler == {**base.sampler, "steps": 10}  # no schedule: only the count
    assert with_sampler_settings(task, 50, rho=3.0).sampler["rho"] == 3.0  # what the caller sets wins
    # the preset as it is keeps its schedules; settings changed by hand or by a count do not
    assert with_sampler_settings(task).schedules == with_sampler_settings(task, 20).schedules == task.schedules
    assert with_sampler_settings(task, rho=3.0).schedules == {}
    resolved = with_sampler_settings(task, 50)
    assert resolved.schedules == {} and with_sampler_settings(resolved, 20).sampler["rho"] == 2.0
