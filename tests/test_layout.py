"""The package layout rules that keep each job in one place (docs/architecture.md, "Where each job lives")."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> dict[str, set[str]]:
    """{file: absolute names of the vggt_vla modules it imports} for every file of a package."""
    found = {}
    for path in sorted((ROOT / "vggt_vla" / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against the file's package
                    parts = path.relative_to(ROOT).with_suffix("").parts[:-node.level]
                    names.add(".".join(parts + ((node.module,) if node.module else ())))
                else:
                    names.add(node.module or "")
        found[str(path.relative_to(ROOT))] = names
    return found


def calls(path: Path) -> set[str]:
    """Names of the functions and classes a file calls (`f(...)`, `module.f(...)`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            found.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
    return found


def package_files() -> list[Path]:
    return sorted((ROOT / "vggt_vla").rglob("*.py"))


def offenders(package: str, above: tuple[str, ...]) -> dict[str, list[str]]:
    """{file of `package`: the modules of `above` (or below them) it imports}, files without any left out."""
    found = {f: sorted(n for n in names if any(n == a or n.startswith(a + ".") for a in above))
             for f, names in imported_modules(package).items()}
    return {f: n for f, n in found.items() if n}


def test_data_and_sim_never_import_each_other():
    for package, other in (("data", "vggt_vla.sim"), ("sim", "vggt_vla.data")):
        offenders = {f: sorted(n for n in names if n == other or n.startswith(other + "."))
                     for f, names in imported_modules(package).items()}
        assert not {f: n for f, n in offenders.items() if n}, f"{package}/ imports {other}: {offenders}"


def test_one_function_builds_dataloaders():
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "vggt_vla").rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\bDataLoader\(", line)]
    assert len(hits) == 1 and hits[0].startswith("vggt_vla/data/loader.py:"), hits


def test_simulators_sit_below_the_runner():
    """sim/ holds envs and experts only: the runner (closed_loop.py) and the policy import it, never
    the other way round, so an env can be used without the model stack."""
    above = ("vggt_vla.closed_loop", "vggt_vla.policy", "vggt_vla.models", "vggt_vla.training", "vggt_vla.recording",
             "torch")
    assert not offenders("sim", above)


def episode_loops(path: Path) -> list[str]:
    """Where `path` loops until an env is done (`while not env.done:`): an episode run to its end."""
    return [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.While)
            and any(isinstance(n, ast.Attribute) and n.attr == "done" for n in ast.walk(node.test))]


def test_sim_runs_no_episodes():
    """Envs and experts only: episodes are run by the runner (closed_loop.py) or recorded by
    recording/, never in sim/."""
    assert not [loop for p in sorted((ROOT / "vggt_vla" / "sim").rglob("*.py")) for loop in episode_loops(p)]
    assert episode_loops(ROOT / "vggt_vla" / "recording" / "demo_env_episodes.py")  # what the check finds


def test_recording_sits_above_data_and_sim_and_below_training():
    """recording/ joins data/ and sim/ (which never import each other); training/ uses it, never the
    other way round, and nothing below it imports it."""
    assert not offenders("recording", ("vggt_vla.training", "vggt_vla.closed_loop", "vggt_vla.policy",
                                       "vggt_vla.models"))
    for package in ("data", "sim", "models"):
        assert not offenders(package, ("vggt_vla.recording",)), package
    imported = set().union(*imported_modules("recording").values())
    assert {"vggt_vla.data.writer", "vggt_vla.sim.demo_env"} <= imported  # it does join the two


def test_one_function_chooses_the_training_set():
    """training/training_data.build_training_data alone builds the live scenes, and the trainer,
    the DataLoaders and the benchmark get their training set from it, not from the dataset alone."""
    builders = [str(p.relative_to(ROOT)) for p in package_files() if "LiveSceneFrames" in calls(p)]
    assert builders == ["vggt_vla/training/training_data.py"], builders
    for user in ("training/trainer.py", "benchmark.py"):
        called = calls(ROOT / "vggt_vla" / user)
        assert "build_training_data" in called and "build_datasets" not in called, user
    definers = [str(p.relative_to(ROOT)) for p in package_files()
                for node in ast.walk(ast.parse(p.read_text()))
                if isinstance(node, ast.FunctionDef) and node.name == "build_dataloaders"]
    assert definers == ["vggt_vla/training/training_data.py"], definers


def test_one_module_writes_mp4():
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in package_files()
            for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\badd_stream\(", line)]
    assert len(hits) == 1 and hits[0].startswith("vggt_vla/data/mp4.py:"), hits
