"""The package's layering (docs/ARCHITECTURE.md): imports go down its floors, no import cycles, lazy
(in-function) imports included, and no private Keras API. Parsed from the source, nothing is imported."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "kconvnext"


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imported(node, module, is_package, modules):
    """Modules of this package that an import statement names (a name that is a submodule counts as
    that submodule; the parent packages that Python initialises on the way are not counted)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in modules]
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    found = []
    for alias in node.names:
        if f"{base}.{alias.name}" in modules:
            found.append(f"{base}.{alias.name}")
        elif base in modules:
            found.append(base)
    return found


def import_graph():
    """{module: {imported module: line}} over every import statement, lazy ones included."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        edges = graph.setdefault(module, {})
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _imported(node, module, path.name == "__init__.py", modules):
                    if target != module:
                        edges.setdefault(target, node.lineno)
    return graph


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _describe(component, graph):
    inside = set(component)
    return "\n".join(f"  {module} -> {target} (line {line})" for module in component
                     for target, line in sorted(graph[module].items()) if target in inside)


def test_the_cycle_finder_sees_a_lazy_cycle():
    graph = {"a": {"b": 1}, "b": {"c": 3}, "c": {"a": 9}, "d": {"a": 2}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_package_has_no_import_cycles_lazy_imports_included():
    graph = import_graph()
    assert len(graph) > 50  # the parser found the package
    found = cycles(graph)
    assert not found, "import cycles (every import statement counts, in functions too):\n" + "\n\n".join(
        _describe(component, graph) for component in found)


def _floors():
    """{room: floor} from docs/ARCHITECTURE.md's ```floors block."""
    text = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text()
    block = text.split("```floors\n", 1)[1].split("```", 1)[0]
    floors = {}
    for line in block.strip().splitlines():
        floor, rooms = line.split(None, 1)
        floors.update({room.strip(): int(floor) for room in rooms.split(",")})
    return floors


def _room(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_imports_go_down_the_floors_documented_in_architecture_md():
    floors, graph = _floors(), import_graph()
    unlisted = sorted({_room(m) for m in graph} - set(floors))
    assert not unlisted, f"rooms missing from docs/ARCHITECTURE.md's floors: {unlisted}"
    upward = [f"{m} (floor {floors[_room(m)]}) -> {t} (floor {floors[_room(t)]}), line {line}"
              for m, targets in graph.items() for t, line in targets.items()
              if _room(m) != _room(t) and floors[_room(m)] <= floors[_room(t)]]
    assert not upward, "imports sideways or up (docs/ARCHITECTURE.md):\n" + "\n".join(upward)


def test_no_private_keras_api():
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                 for path in PACKAGE.rglob("*.py") for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, (ast.Import, ast.ImportFrom))
                 and any((name or "").startswith("keras.src") for name in
                         ([node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]))]
    assert not offenders, f"keras.src is private (it changes in any release): {offenders}"
