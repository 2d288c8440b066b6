"""Lighter visual meshes for rendering LIBERO on a CPU.

A libero_spatial scene holds ~727k mesh vertices, ~600k of them in a dozen visual meshes (each
black bowl alone is a 128k-vertex scan), and OSMesa's software rasteriser spends its time on them:
two 128 px cameras take ~80 ms a step whatever the resolution. At LIBERO's camera sizes a bowl
covers a few hundred pixels, so this module rewrites the scene's MJCF to load simplified copies of
the heavy *visual* meshes (at most `max_faces` triangles each, 5x that when textured):

* Only meshes that every geom using them marks as visual (group="1", contype="0", conaffinity="0")
  are touched, and LIBERO's compiler counts only group 0 in the inertia (inertiagrouprange="0 0"),
  so collision shapes, masses and therefore the physics are exactly as before.
* Simplification is vertex clustering on a grid of positions and texture coordinates; the grid
  is the finest that meets the face budget. Cruder than quadric decimation, but hard to see at
  these sizes, and free of dependencies.
* The pictures change a little, so data and evaluation must use the same setting: it is recorded
  with generated demonstrations (sim.max_mesh_faces) and evaluation takes it from the checkpoint.
* Simplified copies are written once to $VGGT_VLA_CACHE/light_meshes (default
  ~/.cache/vggt_vla/light_meshes) as MuJoCo .msh files, keyed by the source file and the budget.

Reads .msh (MuJoCo's binary format), .obj and binary .stl; a mesh in any other form is kept.
"""

from __future__ import annotations

import hashlib
import os
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional

import numpy as np

CACHE_VERSION = "1"  # bump when the simplification changes: old cached copies are then ignored
MIN_MESH_FACES = 100  # below this the grid clustering leaves blobs
TEXTURED_FACTOR = 5   # a textured mesh's budget, in multiples of max_faces (face_budget)


def check_max_mesh_faces(value: Optional[int], name: str = "max_mesh_faces") -> None:
    """None (meshes as shipped) or a budget of at least MIN_MESH_FACES triangles."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < MIN_MESH_FACES):
        raise ValueError(f"{name}={value!r}: give a number of triangles >= {MIN_MESH_FACES} (e.g. 2000), "
                         f"or leave it unset for the meshes as shipped")


def cache_dir() -> Path:
    return Path(os.environ.get("VGGT_VLA_CACHE", Path.home() / ".cache" / "vggt_vla")) / "light_meshes"


# --------------------------------------------------------------------------- mesh files
class Mesh:
    """Triangles over one vertex list: vertices [N, 3], faces [F, 3] (int), and optional per-vertex
    normals [N, 3] and texture coordinates [N, 2] as MuJoCo's .msh format stores them."""

    def __init__(self, vertices, faces, normals=None, texcoords=None):
        self.vertices = np.asarray(vertices, np.float32).reshape(-1, 3)
        self.faces = np.asarray(faces, np.int32).reshape(-1, 3)
        self.normals = None if normals is None else np.asarray(normals, np.float32).reshape(-1, 3)
        self.texcoords = None if texcoords is None else np.asarray(texcoords, np.float32).reshape(-1, 2)


def read_msh(path: Path) -> Mesh:
    data = Path(path).read_bytes()
    nv, nn, nt, nf = struct.unpack_from("<4i", data)
    arrays, offset = [], 16
    for count, dtype in ((3 * nv, "<f4"), (3 * nn, "<f4"), (2 * nt, "<f4"), (3 * nf, "<i4")):
        arrays.append(np.frombuffer(data, dtype, count, offset))
        offset += 4 * count
    v, n, t, f = arrays
    return Mesh(v, f, n if nn else None, t if nt else None)


def write_msh(mesh: Mesh, path: Path) -> None:
    n = mesh.normals if mesh.normals is not None else np.zeros((0, 3), np.float32)
    t = mesh.texcoords if mesh.texcoords is not None else np.zeros((0, 2), np.float32)
    header = struct.pack("<4i", len(mesh.vertices), len(n), len(t), len(mesh.faces))
    body = b"".join(np.ascontiguousarray(a, dtype).tobytes() for a, dtype in
                    ((mesh.vertices, "<f4"), (n, "<f4"), (t, "<f4"), (mesh.faces, "<i4")))
    Path(path).write_bytes(header + body)


def read_obj(path: Path) -> Mesh:
    """Positions, texture coordinates and normals of a Wavefront OBJ, polygons fanned to triangles;
    a vertex is one (position, texture coordinate, normal) index triple, as MuJoCo loads them."""
    v, vt, vn, corners = [], [], [], []
    for line in Path(path).read_text(errors="replace").splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            v.append([float(x) for x in parts[1:4]])
        elif parts[0] == "vt":
            vt.append([float(x) for x in parts[1:3]])
        elif parts[0] == "vn":
            vn.append([float(x) for x in parts[1:4]])
        elif parts[0] == "f":
            polygon = []
            for corner in parts[1:]:
                ids = (corner.split("/") + ["", ""])[:3]
                sizes = (len(v), len(vt), len(vn))
                polygon.append(tuple(int(i) - 1 if int(i) > 0 else size + int(i) if i else -1
                                     for i, size in zip(ids, sizes)))
            corners += [c for k in range(1, len(polygon) - 1) for c in (polygon[0], polygon[k], polygon[k + 1])]
    triples = np.array(corners, np.int64).reshape(-1, 3)
    keys, inverse = np.unique(triples, axis=0, return_inverse=True)
    has_t = bool(vt) and (keys[:, 1] >= 0).all()
    has_n = bool(vn) and (keys[:, 2] >= 0).all()
    # MuJoCo's OBJ loader flips the v texture coordinate; the .msh files it reads are taken as they are.
    texcoords = None
    if has_t:
        texcoords = np.asarray(vt, np.float32)[keys[:, 1]] * [1, -1] + [0, 1]
    return Mesh(np.asarray(v, np.float32)[keys[:, 0]], inverse.reshape(-1, 3),
                np.asarray(vn, np.float32)[keys[:, 2]] if has_n else None, texcoords)


def read_stl(path: Path) -> Optional[Mesh]:
    """A binary STL (ASCII ones: None, the mesh is kept as it is)."""
    data = Path(path).read_bytes()
    if len(data) < 84 or data[:5] == b"solid" and b"facet" in data[:1024]:
        return None
    (count,) = struct.unpack_from("<I", data, 80)
    records = np.frombuffer(data, np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]), count, 84)
    corners = records["v"].reshape(-1, 3)
    vertices, inverse = np.unique(corners, axis=0, return_inverse=True)
    return Mesh(vertices, inverse.reshape(-1, 3))


READERS = {".msh": read_msh, ".obj": read_obj, ".stl": read_stl}


# --------------------------------------------------------------------------- simplification
def _cluster(mesh: Mesh, cells: int) -> Mesh:
    """Merge the vertices that share a grid cell (`cells` along the longest side) and a cell of
    the texture (`cells` along each side), and drop the triangles that collapse or repeat."""
    lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
    size = max(float((hi - lo).max()), 1e-9) / cells
    key = [np.floor((mesh.vertices - lo) / size).astype(np.int64)]  # [N, 3]
    if mesh.texcoords is not None:
        key.append(np.floor(mesh.texcoords * cells).astype(np.int64))  # [N, 2]
    key = np.concatenate(key, 1)
    _, cluster, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    cluster = cluster.reshape(-1)

    def mean(values):  # [N, k] -> [C, k]
        out = np.zeros((len(counts), values.shape[1]), np.float64)
        np.add.at(out, cluster, values)
        return out / counts[:, None]

    faces = cluster[mesh.faces]  # [F, 3]
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    _, first = np.unique(np.sort(faces, 1), axis=0, return_index=True)
    faces = faces[np.sort(first)]
    normals = None
    if mesh.normals is not None:
        normals = mean(mesh.normals)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    texcoords = None if mesh.texcoords is None else mean(mesh.texcoords)
    return Mesh(mean(mesh.vertices), faces, normals, texcoords)


def face_budget(mesh: Mesh, max_faces: int) -> int:
    """max_faces, or 5x that for a textured mesh: clustering moves texture coordinates by up to a
    cell, and on the scanned objects' fragmented textures 2,000 triangles left visible speckles on a
    bowl seen close by the wrist camera, where 10,000 did not."""
    return max_faces * (TEXTURED_FACTOR if mesh.texcoords is not None else 1)


def simplify(mesh: Mesh, max_faces: int) -> Mesh:
    """The finest grid clustering with at most max_faces triangles (the mesh itself if it has no
    more than that)."""
    if len(mesh.faces) <= max_faces:
        return mesh
    low, high, best = 1, 4096, None
    while low <= high:  # the face count grows with the grid, near enough monotonically
        cells = (low + high) // 2
        candidate = _cluster(mesh, cells)
        if len(candidate.faces) <= max_faces:
            best, low = candidate, cells + 1
        else:
            high = cells - 1
    return best if best is not None and len(best.faces) else mesh


_COPIES: dict[tuple[Path, int], Optional[Path]] = {}  # per process: a hard reset rebuilds the MJCF


def light_copy(source: Path, max_faces: int) -> Optional[Path]:
    """A cached .msh copy of `source` with at most max_faces triangles; None where the file cannot
    be read here or is light already."""
    if (source, max_faces) not in _COPIES:
        _COPIES[source, max_faces] = _make_light_copy(source, max_faces)
    return _COPIES[source, max_faces]


def _make_light_copy(source: Path, max_faces: int) -> Optional[Path]:
    reader = READERS.get(source.suffix.lower())
    if reader is None or not source.is_file():
        return None
    digest = hashlib.sha1(source.read_bytes() + f"|{max_faces}|{CACHE_VERSION}".encode()).hexdigest()[:16]
    target = cache_dir() / f"{source.stem}-{digest}.msh"
    if target.exists():
        return target
    mesh = reader(source)
    if mesh is None or len(mesh.faces) <= face_budget(mesh, max_faces):
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    write_msh(simplify(mesh, face_budget(mesh, max_faces)), partial)
    partial.replace(target)  # atomic: parallel workers never read a half-written file
    return target


# --------------------------------------------------------------------------- the MJCF
def _visual_only(geom: ET.Element) -> bool:
    return geom.get("group") == "1" and geom.get("contype") == "0" and geom.get("conaffinity") == "0"


def lighten_visual_meshes(xml: str, max_faces: int) -> str:
    """The MJCF with every visual-only mesh of more than max_faces triangles loaded from a
    simplified copy (see the module docstring); everything else unchanged."""
    root = ET.fromstring(xml)
    compiler = root.find("compiler")
    if compiler is None or compiler.get("inertiagrouprange") != "0 0":
        # Visual geoms would then count in the inertia: lighter meshes would change the physics.
        raise ValueError("light meshes need a model whose inertia comes from group 0 only "
                         "(<compiler inertiagrouprange=\"0 0\">), as robosuite's and LIBERO's are")
    uses: dict[str, list[bool]] = {}
    for geom in root.iter("geom"):
        if geom.get("mesh"):
            uses.setdefault(geom.get("mesh"), []).append(_visual_only(geom))
    meshdir = Path(compiler.get("meshdir", "."))
    changed = False
    for mesh in root.iter("mesh"):
        name, file = mesh.get("name"), mesh.get("file")
        if not file or not uses.get(name) or not all(uses[name]):
            continue
        path = Path(file) if Path(file).is_absolute() else meshdir / file
        copy = light_copy(path, max_faces)
        if copy is not None:
            mesh.set("file", str(copy))
            changed = True
    return ET.tostring(root, encoding="unicode") if changed else xml

