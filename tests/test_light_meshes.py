"""vggt_vla/sim/light_meshes.py: simplified visual meshes for CPU rendering, physics untouched."""

import struct

import numpy as np
import pytest

from vggt_vla.sim import light_meshes as lm


def _sphere(rings=60, segments=120, radius=0.05):
    """A UV sphere with texture coordinates: [(rings-1) * segments + 2] vertices."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    body = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    vertices = radius * np.concatenate([[[0, 0, 1]], body, [[0, 0, -1]]])
    uv = np.concatenate([[[0.5, 0.0]], np.stack([p / (2 * np.pi), t / np.pi], -1).reshape(-1, 2), [[0.5, 1.0]]])
    ring = lambda r, s: 1 + r * segments + s % segments  # noqa: E731
    faces = [[0, ring(0, s), ring(0, s + 1)] for s in range(segments)]
    for r in range(rings - 2):
        for s in range(segments):
            faces += [[ring(r, s), ring(r + 1, s), ring(r + 1, s + 1)], [ring(r, s), ring(r + 1, s + 1), ring(r, s + 1)]]
    last = len(vertices) - 1
    faces += [[last, ring(rings - 2, s + 1), ring(rings - 2, s)] for s in range(segments)]
    return lm.Mesh(vertices, faces, normals=vertices / radius, texcoords=uv)


def test_simplify_meets_the_budget_and_keeps_the_shape():
    sphere = _sphere()
    assert len(sphere.faces) > 10_000
    light = lm.simplify(sphere, 1000)
    assert 300 < len(light.faces) <= 1000 and len(light.vertices) < len(sphere.vertices) / 10
    radius = np.linalg.norm(light.vertices, axis=1)
    assert np.abs(radius - 0.05).max() < 0.01  # still a 5 cm sphere
    assert light.faces.max() < len(light.vertices) and light.texcoords.shape == (len(light.vertices), 2)
    assert np.allclose(np.linalg.norm(light.normals, axis=1), 1, atol=1e-5)
    assert lm.simplify(sphere, 10**6) is sphere  # within the budget: untouched


def test_mesh_files_round_trip(tmp_path):
    sphere = _sphere(rings=6, segments=8)
    lm.write_msh(sphere, tmp_path / "a.msh")
    back = lm.read_msh(tmp_path / "a.msh")
    for name in ("vertices", "faces", "normals", "texcoords"):
        assert np.array_equal(getattr(back, name), getattr(sphere, name))
    # OBJ: a quad fanned into two triangles, separate v/vt/vn indices, a negative index; the v
    # texture coordinate is flipped as MuJoCo's OBJ loader does.
    (tmp_path / "q.obj").write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0.25\nvn 0 0 1\n"
                                    "f 1/1/1 2/2/1 3/2/1 -1/1/1\n")
    quad = lm.read_obj(tmp_path / "q.obj")
    assert len(quad.faces) == 2 and len(quad.vertices) == 4
    assert {tuple(t) for t in quad.texcoords} == {(0.0, 1.0), (1.0, 0.75)}
    # Binary STL: corners shared between facets become one vertex.
    tris = np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[1, 0, 0], [1, 1, 0], [0, 1, 0]]], np.float32)
    data = b"\0" * 80 + struct.pack("<I", 2) + b"".join(np.zeros(3, np.float32).tobytes() + t.tobytes() + b"\0\0"
                                                       for t in tris)
    (tmp_path / "s.stl").write_bytes(data)
    stl = lm.read_stl(tmp_path / "s.stl")
    assert len(stl.faces) == 2 and len(stl.vertices) == 4


MJCF = """<mujoco>
  <compiler inertiagrouprange="0 0" meshdir="{dir}"/>
  <asset>
    <mesh name="ball_vis" file="ball.msh"/>
    <mesh name="ball_shared" file="shared.msh"/>
    <mesh name="tiny" file="tiny.msh"/>
  </asset>
  <worldbody>
    <body name="ball" pos="0 0 0.1">
      <freejoint/>
      <geom type="sphere" size="0.05" density="500"/>
      <geom type="mesh" mesh="ball_vis" group="1" contype="0" conaffinity="0" density="100"/>
      <geom type="mesh" mesh="ball_shared" group="1" contype="0" conaffinity="0"/>
      <geom type="mesh" mesh="ball_shared" density="300"/>
      <geom type="mesh" mesh="tiny" group="1" contype="0" conaffinity="0"/>
    </body>
  </worldbody>
</mujoco>"""


def test_only_visual_meshes_are_replaced_and_the_physics_is_unchanged(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGT_VLA_CACHE", str(tmp_path / "cache"))
    lm._COPIES.clear()
    lm.write_msh(_sphere(), tmp_path / "ball.msh")
    lm.write_msh(_sphere(), tmp_path / "shared.msh")
    lm.write_msh(_sphere(rings=4, segments=6), tmp_path / "tiny.msh")
    xml = MJCF.format(dir=tmp_path)
    light = lm.lighten_visual_meshes(xml, 1000)
    copies = list((tmp_path / "cache" / "light_meshes").glob("*.msh"))
    assert len(copies) == 1 and str(copies[0]) in light  # the visual-only heavy mesh, and no other
    assert 'file="shared.msh"' in light and 'file="tiny.msh"' in light
    assert len(lm.read_msh(copies[0]).faces) <= 5 * 1000  # textured: five times the budget
    mujoco = pytest.importorskip("mujoco")
    full, lighter = mujoco.MjModel.from_xml_string(xml), mujoco.MjModel.from_xml_string(light)
    assert lighter.nmeshface < full.nmeshface
    assert np.array_equal(full.body_mass, lighter.body_mass) and np.array_equal(full.body_inertia, lighter.body_inertia)
    states = []
    for model in (full, lighter):
        data = mujoco.MjData(model)
        for _ in range(200):
            mujoco.mj_step(model, data)
        states.append(data.qpos.copy())
    assert np.array_equal(*states) and states[0][2] < 0.1  # it fell, identically
    # Without inertia from group 0 only, visual meshes would weigh in: refused.
    with pytest.raises(ValueError, match="inertiagrouprange"):
        lm.lighten_visual_meshes(xml.replace(' inertiagrouprange="0 0"', ""), 1000)


@pytest.mark.parametrize("value", [10, 0, 2.5, True])
def test_a_bad_budget_is_named(value):
    with pytest.raises(ValueError, match=r"max_mesh_faces=.*>= 100"):
        lm.check_max_mesh_faces(value)
