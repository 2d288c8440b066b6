"""A config that names a `base:` states only what it changes (vggt_vla/config.py: load_config_dict)."""

import pytest

from vggt_vla.config import ConfigError, load_config, load_config_dict


def test_a_variant_overrides_its_base_section_by_section():
    base, variant = load_config_dict("libero_cpu"), load_config_dict("libero_cpu_geometry")
    assert "base" not in variant
    assert variant["model"]["geometry_target"]["weight"] > 0
    assert variant["model"]["simple_backbone"] == base["model"]["simple_backbone"]  # kept from the base
    assert variant["train"]["max_steps"] == base["train"]["max_steps"]
    assert variant["train"]["exp_name"] != base["train"]["exp_name"]  # replaced
    cfg = load_config("libero_cpu_geometry", ["train.max_steps=7"])
    assert cfg.train.max_steps == 7 and cfg.sim.demo_geometry


def test_a_base_file_is_found_beside_the_variant(tmp_path):
    (tmp_path / "parent.yaml").write_text("base: demo\ntrain:\n  max_steps: 11\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\ntrain:\n  lr: 0.5\n")
    cfg = load_config(str(tmp_path / "child.yaml"))
    assert cfg.train.max_steps == 11 and cfg.train.lr == 0.5
    assert cfg.model.dim == load_config("demo").model.dim


def test_a_base_cycle_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="comes back to itself"):
        load_config(str(tmp_path / "a.yaml"))
    (tmp_path / "c.yaml").write_text("base: [demo]\n")
    with pytest.raises(ConfigError, match="base must name one config"):
        load_config(str(tmp_path / "c.yaml"))
