"""No import cycles anywhere in `sdtheory`: every `import` statement of every module (function-level
imports included, `if TYPE_CHECKING:` blocks excluded) is an edge of a directed graph between the
package's modules, and the graph must have no cycle (no strongly connected component with more
than one module, no self-import).

One marked exception: an import whose line carries `# import-graph: separate process` runs in
another process with another installed copy of the package (the bundle's `run.py` stages), so it
cannot close a cycle in this one; it is left out."""

import ast
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "sdtheory"
SEPARATE = "# import-graph: separate process"


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _type_checking_nodes(tree) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def import_graph() -> dict[str, set[str]]:
    """`{module: modules of sdtheory it imports}`; `from X import y` points at `X.y` when that is
    a module, else at `X`."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, (path, is_pkg) in mods.items():
        with warnings.catch_warnings():  # invalid escapes in docstrings are not our business here
            warnings.simplefilter("ignore")
            tree = ast.parse(path.read_text())
        skip = _type_checking_nodes(tree)
        lines = path.read_text().splitlines()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if hasattr(node, "lineno") and SEPARATE in lines[node.lineno - 1]:
                continue
            if isinstance(node, ast.Import):
                graph[mod] |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    if sub in mods:
                        graph[mod].add(sub)
                    elif target in mods:
                        graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with a cycle (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in graph[v]:
                    out.append(sorted(comp))
    return out


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_function_level_and_relative_imports():
    g = import_graph()
    assert "sdtheory.lm.methods.base" in g["sdtheory.lm.methods.distill"]  # from .base import
    assert "sdtheory.lm.trainers" in g["sdtheory.lm.train_cli"]  # inside main()
    assert "sdtheory.theory.paced" in g["sdtheory.lm.methods.paced"]  # from ...theory.paced


def test_no_import_cycle_in_sdtheory():
    found = cycles(import_graph())
    assert not found, f"import cycles: {found}"
