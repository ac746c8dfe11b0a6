"""The import graph of the product, imports inside functions included: layers that run one way."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "bookings", "partners", "messaging", "dashboard")
APPS = ("bookings", "partners", "messaging", "dashboard")
# The composition root names every app: the ASGI application and the URL configuration.
COMPOSITION_ROOT = {"config.asgi", "config.urls"}
# The layers, lowest first (docs/architecture.md): a module imports its own layer and the ones
# below, never one above. A module's layer is that of its longest prefix here.
LAYERS = [
    ("config",),  # infrastructure: knows no app
    ("messaging.models", "messaging.shapes", "messaging.events", "messaging.notify"),  # the inbox: every app notifies
    ("partners",),  # accounts, profiles, KYC, earnings, positions
    ("bookings",),  # the lifecycle, dispatch, tallies, the relay
    ("messaging",),  # chat
    ("dashboard",),  # ops
    tuple(sorted(COMPOSITION_ROOT)),  # names every app
]


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def runtime_imports(tree: ast.AST) -> list[str]:
    """Every module named by an import anywhere in the file, except under ``if TYPE_CHECKING:``."""
    names = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        stack.extend(ast.iter_child_nodes(node))
    return names


def graph() -> dict[str, set[str]]:
    known = modules()

    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = {owner(imported) for imported in runtime_imports(ast.parse(path.read_text()))}
        # ``from messaging import events`` runs ``messaging/__init__.py`` too: an edge only if it holds code.
        edges[name] = {t for t in targets if t and t != name and known[t].read_text().strip()}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def layer(module: str) -> int:
    ranked = [(len(prefix), rank) for rank, prefixes in enumerate(LAYERS) for prefix in prefixes]
    matches = [
        (length, rank)
        for (length, rank), prefix in zip(ranked, [p for ps in LAYERS for p in ps], strict=True)
        if module == prefix or module.startswith(prefix + ".")
    ]
    return max(matches)[1]


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_every_import_goes_down_the_layers():
    upward = sorted(
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in graph().items()
        for target in targets
        if layer(target) > layer(module)
    )
    assert upward == []


def test_the_layers_place_modules_by_their_longest_prefix():
    assert layer("config.rooms") == 0
    assert layer("messaging.notify") == 1
    assert layer("messaging.services") == 4
    assert layer("config.asgi") == len(LAYERS) - 1


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_config_imports_no_app_outside_its_composition_root():
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph().items()
        if module.startswith("config.") and module not in COMPOSITION_ROOT
        for target in targets
        if target.split(".")[0] in APPS
    )
    assert wrong == []
