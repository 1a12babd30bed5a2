"""The host package's layers import one way: link <- issuer <- board <- the top (the CLI,
the bridge, the console, port opening, scenarios, the web console in web/, the load
generator in load/). A module may import its own layer and
the ones below it, never one above."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "host_tools" / "posbridge"
TOP = 3
LAYERS = {"link": 0, "issuer": 1, "board": 2, "web": TOP, "load": TOP}


def _layer(module: str) -> int:
    """The layer of a dotted module name inside posbridge ("" is the package itself)."""
    first = module.split(".")[0]
    return LAYERS.get(first, TOP if first else 0)   # the package's __init__: a version


def _imports(path: Path, root: Path = PACKAGE):
    """The posbridge modules `path` imports, as dotted names below posbridge (`root`)."""
    rel = path.relative_to(root).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "posbridge":
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:
                # `from . import x` names a module when x is one
                sub = root.joinpath(*target, alias.name)
                full = target + [alias.name] if (sub.is_dir() or sub.with_suffix(".py").exists()) else target
                yield ".".join(full), node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "posbridge":
                    yield ".".join(alias.name.split(".")[1:]), node.lineno


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    own = _layer(".".join(path.relative_to(PACKAGE).parts))
    upward = [f"line {line}: {target}" for target, line in _imports(path) if _layer(target) > own]
    assert not upward, f"{path.name} imports a layer above its own: {upward}"


def test_every_module_belongs_to_a_layer():
    names = {p.relative_to(PACKAGE).parts[0] for p in MODULES}
    packages = {n for n in names if not n.endswith(".py")}
    assert packages <= set(LAYERS), packages - set(LAYERS)


def test_the_check_sees_an_upward_import(tmp_path):
    # the rule itself, on a made-up link module that imports the issuer three ways
    for d in ("link", "issuer"):
        (tmp_path / d).mkdir()
    (tmp_path / "issuer" / "service.py").write_text("")
    bad = tmp_path / "link" / "codec.py"
    bad.write_text("from ..issuer import service\nfrom ..issuer.service import x\n"
                   "import posbridge.issuer.service\nfrom . import framing\n")
    found = [(t, _layer(t)) for t, _ in _imports(bad, tmp_path)]
    assert found == [("issuer.service", 1)] * 3 + [("link", 0)]
