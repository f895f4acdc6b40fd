"""The shape of the house: the import graph of ``usvpipe/`` is a DAG pointing one way, and no module or
function outgrows what one reader can hold.

Everything is read from the source with :mod:`ast` (nothing is imported, so this runs in well under a
second). What counts as an import of module ``B`` by module ``A``:

- every ``import``/``from … import`` statement in ``A``: at module level, inside a function (a lazy
  import still runs, and a cycle through it still means ``A`` and ``B`` cannot be understood or
  changed apart), and under ``if TYPE_CHECKING:`` (a type-only back-reference is a dependency too);
  relative imports are resolved, and ``from P import x`` counts ``P.x`` when ``x`` is a module;
- a string constant that is exactly a submodule's dotted name (``"usvpipe.vae.training"``): how the lazy
  export tables (``usvpipe/_lazy.py``), the CLI's command table and the deprecated old paths import;
- the package ``__init__`` that importing a submodule runs first (``usvpipe.mmd.params`` runs
  ``usvpipe/mmd/__init__.py``), except from inside that package (a package listing its own
  submodules is the normal, downward direction).

The direction is cli → pipeline → stages → compute kernels: nothing outside the CLI imports the CLI,
and no stage imports the pipeline that orchestrates it.
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "usvpipe"

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80

#: Modules and functions still over the limits because another branch of issue 34's round splits them
#: (synth.py and viz/_explorer.py). Listed only while they are over: when the split lands, the test
#: says the entry is stale, and the integrator deletes it.
KNOWN_OVERSIZE_MODULES = {"usvpipe/synth.py", "usvpipe/viz/_explorer.py"}
KNOWN_OVERSIZE_FUNCTIONS = {"usvpipe/synth.py:synth_recording", "usvpipe/synth.py:make_dataset"}


@functools.lru_cache(maxsize=1)
def _modules() -> dict[str, tuple[Path, bool, str, ast.Module]]:
    """Dotted module name -> (file, is a package ``__init__``, source, parsed tree); each file read once."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        source = path.read_text(encoding="utf-8")
        out[".".join(parts)] = (path, is_package, source, ast.parse(source, filename=str(path)))
    return out


def _imported_modules(module: str, is_package: bool, node: ast.AST, modules) -> set[str]:
    """The modules of ``modules`` an import statement in ``module`` imports (relative imports resolved)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        # `from P import x`: the submodule P.x when x is one, else (a name defined in P) P itself
        names = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in modules else prefix for alias in node.names]
    found = set()
    for name in names:
        while name and name not in modules:  # `import usvpipe.vae.model` of a non-module tail: its module part
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found


@functools.lru_cache(maxsize=1)
def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over ``usvpipe/`` (see the module docstring); shared: do not change it."""
    modules = _modules()
    graph = {}
    for module, (_, is_package, _, tree) in modules.items():
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets |= _imported_modules(module, is_package, node, modules)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value \
                    and node.value in modules:  # (a bare "usvpipe" is a program or logger name, not an import)
                targets.add(node.value)
        for target in list(targets):  # the packages a submodule import runs first
            parts = target.split(".")
            targets |= {p for p in (".".join(parts[:i]) for i in range(2, len(parts)))
                        if p in modules and not _within(module, p)}
        targets.discard(module)
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[a, b, …, a]`` of ``graph``, or ``None`` when it is a DAG (iterative depth-first search)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    for root in sorted(graph):
        if colour[root] != WHITE:
            continue
        stack = [(root, iter(sorted(graph[root])))]
        colour[root] = GREY
        while stack:
            node, children = stack[-1]
            for child in children:
                if colour.get(child, BLACK) == GREY:
                    path = [n for n, _ in stack]
                    return path[path.index(child):] + [child]
                if colour.get(child) == WHITE:
                    colour[child] = GREY
                    stack.append((child, iter(sorted(graph[child]))))
                    break
            else:
                colour[node] = BLACK
                stack.pop()
    return None


def find_cycles(graph: dict[str, set[str]], limit: int = 50) -> list[list[str]]:
    """Cycles of ``graph``, one after another: each found cycle's closing edge is set aside before
    looking again, so every circle of the graph shows up (at most ``limit``)."""
    graph = {k: set(v) for k, v in graph.items()}
    cycles = []
    while len(cycles) < limit and (cycle := find_cycle(graph)) is not None:
        cycles.append(cycle)
        graph[cycle[-2]].discard(cycle[-1])
    return cycles


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_import_graph_of_the_package_has_no_cycle():
    cycles = find_cycles(import_graph())
    assert not cycles, ("import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
                        + "\n(fix: move what both sides need into a lower module that imports neither)")


def test_the_cycle_finder_finds_a_planted_cycle_and_passes_a_dag():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a2"}, "a2": set(), "x": {"y"}, "y": {"x"}}) == ["x", "y", "x"]
    assert find_cycles({"a": {"b"}, "b": {"a"}, "x": {"y"}, "y": {"z"}, "z": {"x"}}) == [["a", "b", "a"],
                                                                                       ["x", "y", "z", "x"]]


def test_the_graph_sees_relative_lazy_type_only_and_string_imports():
    graph = import_graph()
    # a module-level relative import (stage -> its result)
    assert "usvpipe.mmd.result" in graph["usvpipe.mmd.stage"]
    # an import inside a function (the runner imports each stage when it runs it)
    assert "usvpipe.segmentation.batch" in graph["usvpipe.pipeline.run"]
    # `from .. import store` inside a function: the module, not the package
    assert "usvpipe.store" in graph["usvpipe.segmentation.worker"]
    # an import under `if TYPE_CHECKING:`
    assert "usvpipe.pipeline.outcome" in graph["usvpipe.pipeline.report"]
    # importing usvpipe.mmd.params runs usvpipe/mmd/__init__.py first
    assert "usvpipe.mmd" in graph["usvpipe.measures"] and "usvpipe.mmd" not in graph["usvpipe.mmd.stage"]
    # a lazy export table and the CLI's command table name modules as strings
    assert "usvpipe.vae.training" in graph["usvpipe.vae"]
    assert "usvpipe.cli.pipeline" in graph["usvpipe.cli"]


def test_nothing_outside_the_cli_imports_the_cli():
    graph = import_graph()
    offenders = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets
                       if _within(t, "usvpipe.cli") and not _within(m, "usvpipe.cli") and m != "usvpipe.__main__")
    assert not offenders, "the CLI is the top layer; these modules import it:\n" + "\n".join(offenders)


def test_no_stage_imports_the_pipeline_that_runs_it():
    graph = import_graph()
    allowed = ("usvpipe.cli", "usvpipe.pipeline")
    offenders = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets
                       if _within(t, "usvpipe.pipeline") and m != "usvpipe"  # the top-level lazy export table
                       and not any(_within(m, a) for a in allowed))
    assert not offenders, "the pipeline orchestrates the stages; these stage modules import it:\n" + "\n".join(offenders)


def _sizes():
    """``(oversize modules, oversize functions)``: ``[(name, lines)]`` each, names relative to the repository."""
    modules, functions = [], []
    for path, _, source, tree in _modules().values():
        rel = path.relative_to(PACKAGE.parent).as_posix()
        n_lines = len(source.splitlines())
        if n_lines > MAX_MODULE_LINES:
            modules.append((rel, n_lines))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1  # from `def` to the last line, docstring included
                if length > MAX_FUNCTION_LINES:
                    functions.append((f"{rel}:{node.name}", length))
    return modules, functions


def test_no_module_is_over_600_lines_and_no_function_over_80():
    modules, functions = _sizes()
    new_modules = [f"{name}: {n} lines" for name, n in modules if name not in KNOWN_OVERSIZE_MODULES]
    new_functions = [f"{name}: {n} lines" for name, n in functions if name not in KNOWN_OVERSIZE_FUNCTIONS]
    assert not new_modules and not new_functions, (
        f"split by concern (modules <= {MAX_MODULE_LINES} lines, functions <= {MAX_FUNCTION_LINES}):\n"
        + "\n".join(new_modules + new_functions))


def test_every_known_size_exception_is_still_needed():
    modules, functions = _sizes()
    stale = sorted((KNOWN_OVERSIZE_MODULES - {m for m, _ in modules})
                   | (KNOWN_OVERSIZE_FUNCTIONS - {f for f, _ in functions}))
    assert not stale, ("now within the limits: delete from KNOWN_OVERSIZE_MODULES/FUNCTIONS in this file: "
                       + ", ".join(stale))
