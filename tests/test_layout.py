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
    above = ("vggt_vla.closed_loop", "vggt_vla.policy", "vggt_vla.models", "vggt_vla.training", "torch")
    offenders = {f: sorted(n for n in names if any(n == a or n.startswith(a + ".") for a in above))
                 for f, names in imported_modules("sim").items()}
    assert not {f: n for f, n in offenders.items() if n}, offenders
