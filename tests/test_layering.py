"""The import structure of ``src/``: no cycles, no upward imports (docs/architecture.md, "Layering").

Every import counts, at module level or inside a function: a function-level import is still a dependency.
"""

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(REPO, "src")

# Lower layers never import higher ones. Within a layer only the utilities of layer 1 may import each other; the
# model packages of layer 4 are independent of one another.
LAYERS = {
    "src.errors": 0,
    "src.config": 1,
    "src.device": 1,
    "src.cli": 1,
    "src.common": 1,
    "src.dataset": 2,
    "src.convert": 2,  # the .pth reader, key maps and the VGG19 converter; src.convert.run is a runner (below)
    "src.model_base": 3,
    "src.pix2pix": 4,
    "src.cyclegan": 4,
    "src.pix2pixhd": 4,
    "src.metrics": 4,
    "src.models": 5,
    "src.trainer": 6,
    "src.evaluation": 6,
}
MODULE_LAYERS = {"src.convert.run": 6}  # --convert_from_torch: builds any model's generator
TOP_LEVEL = {"train", "eval", "export", "benchmark", "precompute_feature_maps", "data", "tests", "scripts"}


def _modules():
    mods = {}
    for folder, _, files in os.walk(SRC):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                mod = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                mods[mod[: -len(".__init__")] if mod.endswith(".__init__") else mod] = path
    return mods


def _imports(path, modules):
    """Names imported by the file at ``path``: ``src`` modules (a ``from M import f`` of a function counts as M)
    and top-level names."""
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name in modules or name.split(".")[0] in TOP_LEVEL:
                found.add(name)
    return found


def _package(mod):
    return mod if mod.count(".") < 1 else ".".join(mod.split(".")[:2])


def _layer(mod):
    return MODULE_LAYERS.get(mod, LAYERS.get(_package(mod)))


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {mod: _imports(path, modules) for mod, path in modules.items()}


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_src_package_has_a_layer(graph):
    missing = sorted({_package(m) for m in graph if m != "src" and _layer(m) is None})
    assert not missing, f"give these packages a layer in LAYERS: {missing}"


def test_no_import_cycles(graph):
    assert _cycles(graph) == []


def test_src_never_imports_top_level_scripts(graph):
    upward = sorted((m, t) for m, targets in graph.items() for t in targets if t.split(".")[0] in TOP_LEVEL)
    assert upward == []


def test_no_upward_or_sideways_imports(graph):
    bad = []
    for mod, targets in graph.items():
        if mod == "src":
            continue
        for target in targets:
            if target.split(".")[0] != "src" or target == "src":
                continue
            own, other = _layer(mod), _layer(target)
            same_package = _package(mod) == _package(target)
            if other > own or (other == own and own != 1 and not same_package):
                bad.append(f"{mod} (layer {own}) imports {target} (layer {other})")
    assert bad == []


def test_the_checker_sees_cycles_and_upward_imports():
    """The checks above can fail: a made-up graph with a cycle and an upward import is caught."""
    fake = {"src.common.a": {"src.common.b"}, "src.common.b": {"src.common.a", "src.trainer"}, "src.trainer": set()}
    assert _cycles(fake) == [["src.common.a", "src.common.b"]]
    assert _layer("src.trainer") > _layer("src.common.b")
