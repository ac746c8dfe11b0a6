"""The import graph of the product, imports inside functions included: layers that run one way."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "bookings", "partners", "messaging", "dashboard")
APPS = ("bookings", "partners", "messaging", "dashboard")
# The composition root names every app: the ASGI application and the URL configuration.
COMPOSITION_ROOT = {"config.asgi", "config.urls"}
# The layers, lowest first (docs/architecture.md): a module imports its own layer and the ones
# below, never one above. A module's layer is that of its longest prefix here.
LAYERS = [
    ("config",),  # infrastructure: knows no app
    ("partners",),  # accounts, profiles, KYC, earnings, positions
    ("bookings",),  # the lifecycle, dispatch, tallies, the relay
    ("messaging",),  # chat and the notification inbox: listens to what the apps below announce
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


DYNAMIC_IMPORTERS = {"import_module", "import_string", "__import__"}
MODEL_FIELDS = {"ForeignKey", "OneToOneField", "ManyToManyField"}
# Imports the graph cannot follow (the name is computed), each with its reason. Any other fails
# `test_every_dynamic_import_names_a_literal`.
COMPUTED_IMPORTS = {
    # the documented namespaces are the composition root's, found as daphne finds it
    "config.realtime.server": "settings.ASGI_APPLICATION",
}
# References that go up the layers on purpose, each written in docs/architecture.md
# ("Exceptions") with its reason: (module, target) -> kind of reference.
EXCEPTIONS = {
    # tables only: an earning is one booking's, and a partner offers catalogue services
    ("partners.models", "bookings.models"): "table",
}


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _literal(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _model_module(reference: str) -> str | None:
    """``"bookings.Booking"`` (a model's label) -> ``bookings.models``."""
    app, dot, model = reference.rpartition(".")
    return f"{app}.models" if dot and app and model and "." not in app else None


def references(tree: ast.AST, module: str, is_package: bool = False) -> list[tuple[str, str]]:
    """Every module the file reaches, as ``(name, kind)``, except under ``if TYPE_CHECKING:``.

    Kinds: ``import`` (absolute or relative, at the top or inside a function; a literal name given
    to ``importlib.import_module``, ``import_string`` or ``__import__``; ``import x`` then ``x.a.b``),
    ``model`` (``apps.get_model("app", "Model")``) and ``table`` (a foreign key named by its label).
    A computed name is ``("?", "computed")``.
    """
    package = module if is_package else module.rpartition(".")[0]
    nodes = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        nodes.append(node)
        stack.extend(ast.iter_child_nodes(node))

    bound = {}  # a name ``import x.y`` binds -> the module it stands for
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    bound[alias.name.split(".")[0]] = alias.name.split(".")[0]

    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, "import") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                base_parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found += [(base, "import")] + [(f"{base}.{alias.name}".lstrip("."), "import") for alias in node.names]
        elif isinstance(node, ast.Attribute):
            chain = _dotted(node)
            if chain and chain.split(".")[0] in bound:
                head, _, rest = chain.partition(".")
                found.append((f"{bound[head]}.{rest}", "import"))
        elif isinstance(node, ast.Call):
            called = _dotted(node.func) or ""
            name = called.rpartition(".")[2]
            args = [_literal(arg) for arg in node.args]
            if name in DYNAMIC_IMPORTERS:
                if args and args[0] and not args[0].startswith("."):
                    found.append((args[0].rpartition(".")[0] if name == "import_string" else args[0], "import"))
                else:
                    found.append(("?", "computed"))
            elif name == "get_model" and args:
                label = f"{args[0]}.{args[1]}" if len(args) > 1 and args[0] and args[1] else args[0]
                target = _model_module(label) if label else None
                found.append((target, "model") if target else ("?", "computed"))
            elif name in MODEL_FIELDS and args and args[0] and args[0] != "self":
                target = _model_module(args[0])
                if target:
                    found.append((target, "table"))
    return found


def runtime_imports(tree: ast.AST, module: str = "", is_package: bool = False) -> list[str]:
    return [name for name, _ in references(tree, module, is_package)]


def known_owner(known, name: str) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def graph(kinds: bool = False) -> dict:
    """module -> the modules it reaches (with ``kinds``: target -> the kinds of reference)."""
    known = modules()
    edges: dict = {}
    for name, path in known.items():
        targets: dict[str, set[str]] = {}
        tree = ast.parse(path.read_text())
        for imported, kind in references(tree, name, path.name == "__init__.py"):
            target = known_owner(known, imported)
            # ``from messaging import events`` runs ``messaging/__init__.py`` too: an edge only if it holds code.
            if target and target != name and known[target].read_text().strip():
                targets.setdefault(target, set()).add(kind)
        edges[name] = targets if kinds else set(targets)
    return edges


def computed_imports() -> dict[str, int]:
    found = {}
    for name, path in modules().items():
        count = sum(kind == "computed" for _, kind in references(ast.parse(path.read_text()), name))
        if count:
            found[name] = count
    return found


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


def held(edges: dict) -> dict[str, set[str]]:
    """The graph less the written exceptions."""
    return {module: {t for t in targets if (module, t) not in EXCEPTIONS} for module, targets in edges.items()}


def test_no_import_cycles():
    assert cycles(held(graph())) == []


def test_every_import_goes_down_the_layers():
    upward = sorted(
        f"{module} (layer {layer(module)}) reaches {target} (layer {layer(target)}) by {sorted(kinds)}"
        for module, targets in graph(kinds=True).items()
        for target, kinds in targets.items()
        if layer(target) > layer(module) and EXCEPTIONS.get((module, target)) != ",".join(sorted(kinds))
    )
    assert upward == []


def test_every_exception_is_still_needed_and_written_down():
    edges = graph(kinds=True)
    written = (ROOT / "docs" / "architecture.md").read_text().split("### Exceptions")[1]
    for (module, target), kind in EXCEPTIONS.items():
        assert edges[module].get(target) == {kind}, f"{module} -> {target} is no longer only a {kind}: drop it"
        assert f"`{module}` -> `{target}`" in written, f"docs/architecture.md does not explain {module} -> {target}"


def test_every_dynamic_import_names_a_literal():
    assert computed_imports() == dict.fromkeys(COMPUTED_IMPORTS, 1)


def test_the_layers_place_modules_by_their_longest_prefix():
    assert layer("config.rooms") == 0
    assert layer("config.realtime.emit") == 0
    assert layer("messaging.notify") == layer("messaging.models") == 3
    assert layer("config.asgi") == len(LAYERS) - 1


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert cycles({"a": {"b"}, "b": set()}) == []


def _reached(source: str, module: str = "messaging.notify", is_package: bool = False) -> set[tuple[str, str]]:
    return set(references(ast.parse(source), module, is_package))


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        # a relative import inside a function
        ("def f():\n    from .services import message_send\n", "messaging.notify", "messaging.services"),
        ("from . import services\n", "messaging.notify", "messaging.services"),
        ("from .. import bookings\n", "messaging.notify", "bookings"),
        ("from ..bookings.models import Booking\n", "messaging.notify", "bookings.models"),
        # in a package's __init__, ``.`` is the package itself
        ("from .lifecycle import transition\n", "bookings.services", "bookings.services.lifecycle"),
        ("import importlib\nimportlib.import_module('bookings.services')\n", "partners.x", "bookings.services"),
        (
            "from django.utils.module_loading import import_string\nimport_string('bookings.sockets.partner_jobs')\n",
            "partners.x",
            "bookings.sockets",
        ),
        ("__import__('bookings.models')\n", "partners.x", "bookings.models"),
        ("import bookings\ndef f():\n    return bookings.models.Booking\n", "partners.x", "bookings.models"),
        ("import bookings.models as bm\nbm.Booking\n", "partners.x", "bookings.models"),
    ],
)
def test_the_graph_sees_every_kind_of_import(source, module, expected):
    """Each mutant the old test let through: the graph now reaches the module it names."""
    known = {m: None for m in (*modules(), "bookings")}
    reached = {
        known_owner(known, name)
        for name, kind in references(ast.parse(source), module, module == "bookings.services")
        if kind == "import"
    }
    assert expected in reached


def test_the_graph_sees_models_named_by_their_label():
    assert ("bookings.models", "model") in _reached(
        "from django.apps import apps\napps.get_model('bookings', 'Booking')\n"
    )
    assert ("bookings.models", "model") in _reached("def f(apps):\n    apps.get_model('bookings.Booking')\n")
    assert ("bookings.models", "table") in _reached("x = models.ForeignKey('bookings.Booking', on_delete=None)\n")
    assert ("bookings.models", "table") in _reached("x = models.ManyToManyField('bookings.Service')\n")
    # a name the graph cannot read is reported, not passed
    assert ("?", "computed") in _reached("import importlib\nimportlib.import_module(name)\n")
    assert ("?", "computed") in _reached("apps.get_model(label)\n")


@pytest.mark.parametrize(
    ("path", "mutant", "module", "target"),
    [
        # a relative import inside a function (beyond its app: the parser resolves it as written)
        (
            "bookings/services/lifecycle.py",
            "\ndef _mutant():\n    from ...messaging import notify\n",
            "bookings.services.lifecycle",
            "messaging.notify",
        ),
        (
            "partners/tracking.py",
            "\ndef _mutant():\n    from django.apps import apps\n    return apps.get_model('bookings', 'Booking')\n",
            "partners.tracking",
            "bookings.models",
        ),
        (
            "partners/access.py",
            "\nimport bookings\ndef _mutant():\n    return bookings.services.lifecycle\n",
            "partners.access",
            "bookings.services.lifecycle",
        ),
        (
            "partners/accounts.py",
            "\nimport importlib\n_m = importlib.import_module('dashboard.selectors')\n",
            "partners.accounts",
            "dashboard.selectors",
        ),
        (
            "bookings/models.py",
            "\n_m = models.ForeignKey('messaging.Notification', on_delete=models.CASCADE)\n",
            "bookings.models",
            "messaging.models",
        ),
    ],
)
def test_an_upward_reference_of_each_kind_fails_the_layer_test(monkeypatch, path, mutant, module, target):
    """The wiring, not only the parser: each mutant, written alone into a module of the product, is found."""
    real = Path.read_text

    def read_text(self, *args, **kwargs):
        text = real(self, *args, **kwargs)
        return text + mutant if self == ROOT / path else text

    monkeypatch.setattr(Path, "read_text", read_text)
    assert target in graph()[module]
    with pytest.raises(AssertionError):
        test_every_import_goes_down_the_layers()


def test_a_relative_cycle_fails_the_cycle_test(monkeypatch):
    """``partners.services`` imports ``partners.models``; a relative import back closes a cycle."""
    assert "partners.models" in graph()["partners.services"]
    real = Path.read_text

    def read_text(self, *args, **kwargs):
        text = real(self, *args, **kwargs)
        if self == ROOT / "partners" / "models.py":
            text += "\ndef _mutant():\n    from .services import partner_set_availability\n"
        return text

    monkeypatch.setattr(Path, "read_text", read_text)
    with pytest.raises(AssertionError):
        test_no_import_cycles()


def test_config_imports_no_app_outside_its_composition_root():
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph().items()
        if module.startswith("config.") and module not in COMPOSITION_ROOT
        for target in targets
        if target.split(".")[0] in APPS
    )
    assert wrong == []


def product_room_names() -> tuple[set[str], set[str]]:
    """The names ``config/rooms.py`` spells: whole names (``"admins"``) and prefixes (``"booking:"``)."""
    names, prefixes = set(), set()
    for node in ast.walk(ast.parse((ROOT / "config" / "rooms.py").read_text())):
        if isinstance(node, ast.Assign) and _literal(node.value):
            names.add(node.value.value)
        elif isinstance(node, ast.JoinedStr) and node.values and _literal(node.values[0]):
            prefixes.add(node.values[0].value)
    return names, prefixes


def room_names_in_realtime() -> list[str]:
    """Every reference from ``config/realtime`` to ``config.rooms`` (any kind the graph sees), and
    every string there (docstrings aside) that is a product room or namespace, or starts like one."""
    names, prefixes = product_room_names()
    found = [
        f"{module} reaches config.rooms"
        for module, targets in graph().items()
        if module.startswith("config.realtime") and "config.rooms" in targets
    ]
    for path in sorted((ROOT / "config" / "realtime").rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr) and _literal(node.value) is not None
        }
        for node in ast.walk(tree):
            text = _literal(node)
            if text is None or id(node) in docstrings:
                continue
            if text in names or any(text.startswith(prefix) for prefix in prefixes):
                found.append(f"{path.name}:{node.lineno} {text!r}")
    return found


def test_config_realtime_names_no_product_room():
    """``config.realtime`` is infrastructure: it reaches neither an app nor ``config.rooms``, and
    spells no product room or namespace."""
    names, prefixes = product_room_names()
    assert {"/customer", "admins", "monitor:bookings"} <= names and "booking:" in prefixes
    assert room_names_in_realtime() == []
    wrong = sorted(
        f"{module} reaches {target}"
        for module, targets in graph().items()
        if module.startswith("config.realtime")
        for target in targets
        if target.split(".")[0] in APPS
    )
    assert wrong == []


@pytest.mark.parametrize(
    "mutant",
    [
        "\nfrom config import rooms\n",
        "\ndef _mutant():\n    from .. import rooms\n",
        "\n_ROOM = 'monitor:bookings'\n",
        "\ndef _mutant(booking_id):\n    return f'booking:{booking_id}'\n",
        "\n_NAMESPACE = '/admin'\n",
    ],
)
def test_a_room_name_in_config_realtime_fails_the_room_rule(monkeypatch, mutant):
    real = Path.read_text

    def read_text(self, *args, **kwargs):
        text = real(self, *args, **kwargs)
        return text + mutant if self == ROOT / "config" / "realtime" / "emit.py" else text

    monkeypatch.setattr(Path, "read_text", read_text)
    with pytest.raises(AssertionError):
        test_config_realtime_names_no_product_room()
