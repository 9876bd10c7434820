"""The package's structure: no import cycle (counting imports inside functions too), modules of at most
400 lines and functions of at most 60."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "permopt"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """permopt module -> the permopt modules it imports anywhere (top level, functions,
    TYPE_CHECKING blocks); ``from pkg import name`` counts as importing ``pkg.name`` when that
    is a module, else ``pkg``."""
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    name = f"{target}.{alias.name}"
                    graph[mod].add(name if name in files else target)
            elif isinstance(node, ast.Import):
                graph[mod].update(a.name for a in node.names)
        graph[mod] = {d for d in graph[mod] if d in files and d != mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    graph = import_graph()
    assert "permopt.solvers.colgen" in graph["permopt.bounds"]  # the graph sees real edges
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def sizes(root: Path = ROOT) -> tuple[dict[str, int], dict[str, int]]:
    """Lines per module and per function (nested ones counted on their own too)."""
    modules, functions = {}, {}
    for path in root.rglob("*.py"):
        text = path.read_text()
        modules[str(path)] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions[f"{path}:{node.lineno} {node.name}"] = node.end_lineno - node.lineno + 1
    return modules, functions


def test_modules_and_functions_stay_small():
    """The house rule (issue 38): modules at most 400 lines, functions at most 60."""
    modules, functions = sizes()
    assert {m: n for m, n in modules.items() if n > 400} == {}
    assert {f: n for f, n in functions.items() if n > 60} == {}


def test_the_size_rule_sees_a_long_function(tmp_path):
    (tmp_path / "long.py").write_text("def f():\n" + "    x = 1\n" * 70)
    modules, functions = sizes(tmp_path)
    assert modules[str(tmp_path / "long.py")] == 71 and list(functions.values()) == [71]
