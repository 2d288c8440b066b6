"""Config loading and validation: every shipped config loads, bad input names the problem."""

import pytest

from vggt_vla.config import NAMED_CONFIGS, Config, ConfigError, config_from_dict, load_config


@pytest.mark.parametrize("name", sorted(NAMED_CONFIGS))
def test_named_configs_load(name):
    cfg = load_config(name)
    assert isinstance(cfg, Config)
    if name.startswith("libero_cpu"):  # scripted demonstrations generated here
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
    assert load_config("simple").sim.name is None  # no simulator: quick_start evaluates offline only


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
