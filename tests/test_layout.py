"""The package's shape: packages import only in the direction data flows (``RANKS``), no import cycle in
``asgm/``, and Streamlit only in the app glue (plus the one place that reads credentials from Streamlit secrets)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "asgm"
#: Outside ``asgm/app/``, only this module may import streamlit: it reads Earth Engine credentials from st.secrets.
SECRETS_READER = "asgm.sources.gee"


#: The direction data flows. A module may import the shared base (the top-level modules), its own package and
#: packages of a lower rank; packages of the same rank do not import each other. New packages get a rank here.
RANKS: dict[str, int] = {
    "jobs": 1,
    "data": 2,
    "sources": 3,
    "osm": 3,
    "model": 4,
    "training": 5,
    "scan": 6,
    "maps": 6,
    "places": 6,
    "review": 7,
    "cli": 8,
    "app": 8,
}
#: Top-level modules outside the shared base: the entry point sits above the CLI.
TOP_LEVEL_RANK = {"asgm.__main__": 9}


def _rank(module: str) -> tuple[str, int]:
    """(package, rank) of a dotted module name; the shared base is ("", 0)."""
    parts = module.split(".")
    if module in TOP_LEVEL_RANK:
        return module, TOP_LEVEL_RANK[module]
    if len(parts) > 1 and parts[1] in RANKS:
        return parts[1], RANKS[parts[1]]
    return "", 0


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module this file imports (at the top or inside functions), as dotted names."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)  # `from asgm import runs` names a module
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in files and m != name} for name, path in files.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_graph_sees_known_edges():
    """The checker itself: it finds the real edges (so an empty graph cannot pass the tests below)."""
    graph = _graph()
    assert {"asgm.model.runs", "asgm.training.scoring"} <= graph["asgm.training.train"]
    assert {"asgm.model.runs", "asgm.training.evaluate", "asgm.model.inference"} <= graph["asgm.training.scoring"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_every_package_has_a_rank_and_a_docstring():
    packages = {p.parent.name for p in PKG.glob("*/__init__.py")}
    assert packages == set(RANKS), packages ^ set(RANKS)
    for name in packages:
        doc = ast.get_docstring(ast.parse((PKG / name / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "May import" in doc, f"asgm/{name}/__init__.py must say what it holds and may import"


def test_imports_follow_the_data_flow():
    """Nothing reaches back up: every import goes to the base, the same package or a lower rank."""
    wrong = []
    for module, deps in _graph().items():
        pkg, rank = _rank(module)
        for dep in deps:
            dpkg, drank = _rank(dep)
            if dpkg == pkg or drank == 0 or dep == "asgm":
                continue
            if drank >= rank:
                wrong.append(f"{module} -> {dep}")
    assert wrong == [], wrong
    # the checker itself: it sees a real edge that goes down
    assert "asgm.model.runs" in _graph()["asgm.training.train"]


def test_init_files_hold_no_code():
    """Role packages' ``__init__`` files are docstrings only (no re-exports), so importing one submodule never
    loads its siblings and Home stays pandas-free. (``osm``, ``sources`` and ``cli`` keep their error types and
    parser helpers there.)"""
    for name in set(RANKS) - {"cli", "osm", "sources"}:
        body = ast.parse((PKG / name / "__init__.py").read_text(encoding="utf-8")).body
        code = [n for n in body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        assert code == [], f"asgm/{name}/__init__.py"


def test_no_import_cycle_in_asgm():
    assert _cycle(_graph()) is None


def test_nothing_in_the_core_depends_on_train_but_its_callers():
    users = {m for m, deps in _graph().items() if "asgm.training.train" in deps}
    assert users <= {"asgm.training.experiments", "asgm.cli.training"}, users


def test_streamlit_only_in_the_app_package_and_the_secrets_reader():
    importers = {_module_name(p) for p in PKG.rglob("*.py") if "streamlit" in {m.split(".")[0] for m in _imports(p)}}
    outside = {m for m in importers if not m.startswith("asgm.app")}
    assert outside == {SECRETS_READER}, outside
    assert any(m.startswith("asgm.app.") for m in importers)


def test_core_modules_import_without_streamlit_or_tensorflow():
    """Importing the engine and the CLI in a fresh interpreter pulls in neither Streamlit nor TensorFlow."""
    code = (
        "import sys, asgm.training.train, asgm.model.runs, asgm.training.evaluate, asgm.training.experiments, asgm.model.inference, asgm.maps.points, "  # noqa: E501
        "asgm.model.store_fit, asgm.cli, asgm.cli.training; "
        "print(sorted(m for m in ('streamlit', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PKG.parent
    ).stdout.strip()
    assert out == "[]"


def test_the_core_never_imports_the_app_package():
    graph = _graph()
    reaching_up = {
        m for m, deps in graph.items() if not m.startswith("asgm.app") and any(d.startswith("asgm.app") for d in deps)
    }
    assert reaching_up == set(), reaching_up
    assert any(
        d.startswith("asgm.maps.points") or d.startswith("asgm.model.inference")
        for d in set().union(*(graph[m] for m in graph if m.startswith("asgm.app")))
    )
