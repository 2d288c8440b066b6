"""Config loading and validation: every shipped config loads, bad input names the problem."""

import dataclasses

import pytest

from conftest import saved_before_the_live_section
from vggt_vla.config import NAMED_CONFIGS, Config, ConfigError, config_from_dict, load_config


@pytest.mark.parametrize("name", sorted(NAMED_CONFIGS))
def test_named_configs_load(name):
    cfg = load_config(name)
    assert isinstance(cfg, Config)
    if name.startswith("libero_"):  # scripted demonstrations generated here
        assert cfg.data.dataset_root.endswith("/lerobot") and cfg.sim.demos_per_task > 0
    elif name != "demo":  # the demo trains on the embedded dataset, not on LIBERO
        assert cfg.data.dataset_repo == "lerobot/libero_spatial_image"
    assert cfg.data.camera_keys == ["observation.images.image", "observation.images.wrist_image"]


def test_named_config_expectations():
    simple, dino, full = load_config("simple"), load_config("dinov2"), load_config("full")
    assert not simple.model.vision.use_vision_tower and simple.model.language.language_model == "Qwen/Qwen2-0.5B"
    assert dino.model.vision.vision_tower_name == "facebook/dinov2-base"
    assert dino.model.language.language_model == "Qwen/Qwen3-0.6B-Base"
    assert dino.model.language.fallback_language_model == "Qwen/Qwen2-0.5B"
    assert full.model.backbone == "vggt"


def test_unknown_key_names_the_nearest_valid_one():
    with pytest.raises(ConfigError, match=r"'model\.simple_backbone\.deph'.*did you mean 'depth'"):
        load_config("simple", ["model.simple_backbone.deph=3"])
    with pytest.raises(ConfigError, match=r"unknown config key 'modle'.*'model'"):
        config_from_dict({"modle": {}})


def test_overrides_are_parsed_as_yaml():
    cfg = load_config("simple", ["train.lr=3e-4", "model.vision.use_vision_tower=true",
                                 "data.camera_keys=[observation.images.image]", "model.dim=384"])
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.model.vision.use_vision_tower is True
    assert cfg.data.camera_keys == ["observation.images.image"]
    assert cfg.model.dim == 384


def test_yaml_file_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("model:\n  dim: 96\n  simple_backbone: {num_heads: 4}\ntrain:\n  lr: 1e-3\n")
    cfg = load_config(str(path))
    assert cfg.model.dim == 96 and cfg.train.lr == pytest.approx(1e-3)
    with pytest.raises(ConfigError, match="neither a named config"):
        load_config(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("override, message", [
    ("model.dim=770", "model.dim=770 is not divisible by simple_backbone.num_heads=12"),
    ("model.vision.patch_size=18", "image_size=224 is not a multiple of vision.patch_size=18"),
    ("model.vision.patch_size=15", "linear_pool pools 2x2 first, so vision.patch_size must be even, got 15"),
    ("model.simple_backbone.grid_connectivity=6", "grid_connectivity=6 is not valid"),
    ("model.simple_backbone.graph_type=knn", "graph_type"),
    ("model.action_head.type=diffusion", "action_head.type"),
    ("model.backbone=transformer", "model.backbone"),
    ("model.action_head.chunk_size=0", "action_head.chunk_size must be > 0"),
    ("model.vggt.image_size=225", "not a multiple of VGGT's patch size 14"),
    ("model.vision.num_cameras=1", "lists 2 cameras but model.vision.num_cameras=1"),
    ("model.dim=abc", "model.dim must be an integer"),
    ("model.vision.use_vision_tower=maybe", "must be true or false"),
    ("train.lr=-1", "train.lr must be > 0"),
    ("model.state_dim=-1", "state_dim must be >= 0"),
])
def test_invalid_values_are_rejected_naming_the_field(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config("simple", [override])


def test_override_syntax_error():
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config("simple", ["model.dim"])


def test_sim_section_is_checked():
    cfg = load_config("libero_cpu")
    assert cfg.sim.name == "libero" and cfg.sim.demos_per_task > 0 and cfg.sim.fast_render
    assert cfg.model.vision.image_size == cfg.sim.camera_size  # the policy sees the renders at full size
    with pytest.raises(ConfigError, match="sim.name='mujoco'"):
        load_config("libero_cpu", ["sim.name=mujoco"])
    with pytest.raises(ConfigError, match="must end in /lerobot"):
        load_config("libero_cpu", ["data.dataset_root=data/elsewhere"])
    with pytest.raises(ConfigError, match="needs sim.name: libero"):
        load_config("demo", ["sim.demos_per_task=5"])
    with pytest.raises(ConfigError, match=r"sim.demo_layout_exchange is a fraction of the scenes: \[0, 1\]"):
        load_config("libero_cpu", ["sim.demo_layout_exchange=2"])
    assert load_config("simple").sim.name is None  # no simulator: quick_start evaluates offline only


def test_geometry_rows_share_data_and_robustness_scoring():
    """The geometry ablation's rows differ in model: only; each is also scored on LIBERO-PRO's
    perturbed suites and with the camera moved, and a bad robustness setting is named."""
    base = load_config("libero_cpu_geo_baseline")
    assert base.sim.robustness_suites == ["libero_spatial_swap", "libero_spatial_object", "libero_spatial_lan"]
    assert base.sim.eval_camera_shift == [0.05, 5.0] and base.sim.demo_geometry
    for row in ("libero_cpu_geometry", "libero_cpu_vggt_align"):
        cfg = load_config(row)
        assert cfg.data == base.data and cfg.sim == base.sim and cfg.train.max_steps == base.train.max_steps
        assert cfg.model != base.model
    # quick_start trains the alignment row's missing teacher at the small preset: the row must
    # describe that architecture, or loading the teacher it just trained would be refused.
    from vggt_vla.models.vggt import SMALL_KWARGS
    assert load_config("libero_cpu_vggt_align").model.geometry_alignment.aggregator_kwargs == SMALL_KWARGS
    # The layouts row changes the demonstrations only: their scenes (and so their directory).
    layouts = load_config("libero_cpu_layouts")
    assert layouts.model == base.model and layouts.train.max_steps == base.train.max_steps
    assert layouts.sim.demo_layout_exchange == 0.5 and base.sim.demo_layout_exchange == 0
    assert dataclasses.replace(layouts.sim, demo_layout_exchange=0) == base.sim
    assert layouts.data.dataset_root != base.data.dataset_root
    redraw = load_config("libero_cpu_redraw")  # likewise: only how its demonstration scenes start
    assert redraw.model == base.model and redraw.train.max_steps == base.train.max_steps
    assert redraw.sim.demo_redraw_fixtures and not base.sim.demo_redraw_fixtures
    assert dataclasses.replace(redraw.sim, demo_redraw_fixtures=False) == base.sim
    assert redraw.data.dataset_root not in (base.data.dataset_root, layouts.data.dataset_root)
    with pytest.raises(ConfigError, match=r"sim.eval_camera_shift must be \[metres, degrees\]"):
        load_config("libero_cpu", ["sim.eval_camera_shift=[0.05]"])
    with pytest.raises(ConfigError, match="robustness_suites are LIBERO suites"):
        load_config("demo", ["sim.robustness_suites=[libero_spatial_swap]"])


def test_inference_section_defaults_and_overrides():
    from vggt_vla.config import InferenceConfig

    inference = load_config("simple").inference  # no inference: section in the file
    assert (inference.n_action_steps, inference.temporal_ensemble) == (5, None)
    cfg = load_config("simple", ["inference.n_action_steps=3", "inference.temporal_ensemble=0.01"])
    assert cfg.inference == InferenceConfig(n_action_steps=3, temporal_ensemble=0.01)


@pytest.mark.parametrize("override, message", [
    ("inference.n_action_steps=0", "inference.n_action_steps must be >= 1"),
    ("inference.n_action_steps=11", "n_action_steps=11 is more than the model.action_head.chunk_size=10"),
    ("inference.temporal_ensemble=.inf", "inference.temporal_ensemble must be a finite coefficient"),
    ("inference.temporal_ensemble=abc", "inference.temporal_ensemble must be a number"),
])
def test_inference_section_rejects_what_a_policy_cannot_run(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("simple", [override])


def test_a_run_config_yaml_round_trips_the_inference_section(tmp_path):
    import yaml

    cfg = load_config("simple", ["inference.n_action_steps=2", "inference.temporal_ensemble=0.05"])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))  # as the trainer writes it
    assert load_config(str(path)).inference == cfg.inference


def test_a_config_without_the_inference_section_loads_with_the_default():
    # Chunks shorter than the default queue train as before; the queue is checked when a policy runs.
    cfg = config_from_dict({"model": {"action_head": {"chunk_size": 4}}})
    assert cfg.inference.n_action_steps == 5 and cfg.inference.temporal_ensemble is None


def test_the_demo_config_trains_on_live_scenes():
    from vggt_vla.config import LiveScenesConfig

    assert load_config("demo").data.live == LiveScenesConfig(enabled=True, shared_colour=0.8,
                                                             action_noise_correlation=0.8)
    assert load_config("simple").data.live == LiveScenesConfig()  # off


@pytest.mark.parametrize("override, message", [
    ("data.live.frame_stride=0", "data.live.frame_stride must be >= 1"),
    ("data.live.action_noise=-0.1", "data.live.action_noise must be >= 0"),
    ("data.live.action_noise_correlation=1.0", r"data.live.action_noise_correlation must be in \[0, 1\)"),
    ("data.live.shared_colour=1.5", r"data.live.shared_colour must be in \[0, 1\] or null"),
    ("sim.name=libero", "data.live.enabled trains on live scenes of the demo env, but sim.name is 'libero'"),
    ("train.max_steps=null", "set train.max_steps"),
    ("train.cache_features=true", "data.live frames are not the dataset's"),
])
def test_the_live_section_rejects_what_it_cannot_run(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("demo", [override])


def test_a_live_scene_mix_without_live_scenes_is_refused():
    with pytest.raises(ConfigError, match="set data.live.enabled: true or drop it"):
        load_config("simple", ["data.live.shared_colour=0.5"])


def test_an_old_flat_live_key_in_a_config_file_names_its_new_place():
    with pytest.raises(ConfigError, match=r"'data.live_expert' is 'data.live.enabled' now"):
        load_config("demo", ["data.live_expert=true"])
    with pytest.raises(ConfigError, match=r"'data.live_noise_correlation' is 'data.live.action_noise_correlation'"):
        config_from_dict(saved_before_the_live_section(load_config("demo"), {"live_noise_correlation": 0.8}))


def test_a_saved_run_config_with_the_flat_live_keys_loads_into_the_live_section(tmp_path):
    import yaml

    demo = load_config("demo")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(saved_before_the_live_section(demo), sort_keys=False))  # a run's config.yaml
    assert load_config(str(path), saved=True) == demo
    assert load_config(str(path), ["train.max_steps=10"], saved=True).train.max_steps == 10
    assert config_from_dict(saved_before_the_live_section(demo), saved=True) == demo  # a checkpoint's


def test_a_saved_config_with_both_spellings_is_refused():
    tree = saved_before_the_live_section(load_config("demo"))
    tree["data"]["live"] = {"enabled": True}
    with pytest.raises(ConfigError, match="gives both 'data.live_expert'"):
        config_from_dict(tree, saved=True)
