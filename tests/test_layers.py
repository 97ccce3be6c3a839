"""The house's layers: one-way imports between packages, a torch-free symbolic layer,
and the family seam (training/ and cli/ know no family)."""

import ast
import re
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "tatumflow"
PATHS: dict[str, Path] = {}
FAMILY_DIRS = sorted(p.name for p in (PKG / "models").iterdir() if p.is_dir() and (p / "__init__.py").exists())


def _module(path: Path) -> list[str]:
    parts = list(path.relative_to(PKG).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imports() -> dict[str, set[str]]:
    """Every module (dotted, below tatumflow) -> the tatumflow modules it imports, anywhere in it
    (function-local imports included)."""
    out = {}
    for path in PKG.rglob("*.py"):
        mod = _module(path)
        is_pkg = path.name == "__init__.py"
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod[: len(mod) - node.level + (1 if is_pkg else 0)]
                    target = base + (node.module.split(".") if node.module else [])
                elif node.module and node.module.split(".")[0] == "tatumflow":
                    target = node.module.split(".")[1:]
                else:
                    continue
                names = [a.name for a in node.names]
                subs = [target + [n] for n in names if (PKG.joinpath(*target, n).with_suffix(".py").exists()
                                                        or (PKG.joinpath(*target, n) / "__init__.py").exists())]
                found.update(".".join(t) for t in (subs or [target]))
            elif isinstance(node, ast.Import):
                found.update(".".join(a.name.split(".")[1:]) for a in node.names if a.name.startswith("tatumflow."))
        out[".".join(mod)] = {f for f in found if f}
        PATHS[".".join(mod)] = path
    return out


def package_graph() -> dict[str, set[str]]:
    """Top-level package (or top-level module) -> the others it imports (the root __init__ is the facade)."""
    g: dict[str, set[str]] = {}
    for mod, deps in imports().items():
        if not mod:
            continue
        src = mod.split(".")[0]
        g.setdefault(src, set()).update(d.split(".")[0] for d in deps if d.split(".")[0] != src)
    return g


def test_no_package_level_import_cycle():
    g = package_graph()
    state: dict[str, int] = {}

    def visit(n, path):
        state[n] = 1
        for m in g.get(n, ()):
            assert state.get(m) != 1, f"import cycle: {' -> '.join(path + [m])}"
            if m not in state:
                visit(m, path + [m])
        state[n] = 2

    for n in g:
        if n not in state:
            visit(n, [n])


def test_training_and_cli_know_no_family():
    for mod, deps in imports().items():
        top = mod.split(".")[0]
        if top == "training":
            bad = [d for d in deps if d.startswith("models") and d != "models.protocol"]
            assert not bad, f"{mod} imports {bad}: training sees models.protocol only"
        if top in ("training", "cli"):
            source = PATHS[mod].read_text()
            for fam in FAMILY_DIRS:
                q = f"[\"']{fam}[\"']"
                assert not re.search(rf"(==|!=)\s*{q}|{q}\s*(==|!=)|\[{q}\]|in \([^)]*{q}", source), \
                    f"{mod} branches on the family {fam}"
                assert f"models.{fam}" not in source, f"{mod} imports the family {fam}"
    assert not imports()["models.protocol"], "the protocol imports nothing of the package"


def test_every_family_folder_is_registered():
    from tatumflow.models.registry import FAMILIES

    assert sorted(FAMILIES) == FAMILY_DIRS
    for name, fam in FAMILIES.items():
        assert fam.name == name and fam.model_class.family == name and fam.modes


def test_symbolic_layers_import_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import tatumflow, tatumflow.performance, tatumflow.midi, tatumflow.tokenizer, tatumflow.features, "
            "tatumflow.features.chords, tatumflow.evaluation, tatumflow.corpus, tatumflow.data.store, tatumflow.align, "
            "tatumflow.data.stats, tatumflow.tokenizer.ids\n"
            "assert 'torch' not in {m.split('.')[0] for m in sys.modules if sys.modules[m] is not None}\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
