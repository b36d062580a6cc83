"""The package layout keeps its rules (docs/concepts.md, "How the packages are layered").

Read from the source as text (nothing is imported), so a rule broken by a lazy import inside a
function is caught as well as one at the top of a module.
"""

from __future__ import annotations

import ast
import collections
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Floors of the library, lowest first: a package may import its own modules and packages of lower
# floors only. `rewardlab_envs` (envs/) stands apart and imports nothing of the library.
FLOORS = {
    "rewardlab": 0,  # the package face (version)
    "rewardlab._types": 0,
    "rewardlab._checks": 0,
    "rewardlab._io": 0,
    "rewardlab.linalg": 0,
    "rewardlab.rewards": 1,
    "rewardlab.wrappers": 1,
    "rewardlab.tabular": 1,
    "rewardlab.sweeps": 1,
    "rewardlab.testing": 1,
    "rewardlab.llm": 1,  # language-model tools: client, local server, reward-code contract, sandbox
    "rewardlab.vlm": 1,  # vision-language rewards: CLIP models, frame sources, goal-baseline projection
    "rewardlab.preferences": 2,
    "rewardlab.distances": 2,
    "rewardlab.shaping": 2,
    "rewardlab.intrinsic": 3,  # exploration bonuses (counts, RND, E3B): reward sources above preferences
    "rewardlab.rl": 3,
    "rewardlab.bilevel": 3,  # beside rl: it uses preferences' Bradley–Terry loss (PARL)
    "rewardlab.labelling": 3,  # human labelling web app; its teacher plugs into rl's loop by registration
    "rewardlab.irl": 4,
    "rewardlab.search": 4,  # reward-code searches with a language model: Eureka, Text2Reward, ICPL
    "rewardlab.cli": 5,
}
# Agents and torch live in `rl` and above. Exceptions below: the SB3 VecEnv wrapper, and `rewardlab.vlm`,
# whose models are torch CLIP models (torch only; its SB3 rollout relabelling callback is the one SB3 file).
AGENT_PACKAGES = ("stable_baselines3", "torch", "sbx")
AGENT_EXCEPTIONS = {"rewardlab/wrappers/_sb3.py", "rewardlab/vlm/_relabel.py"}
TORCH_PACKAGES = {"rewardlab.vlm"}  # may import torch (not stable_baselines3 or sbx)


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[0] == "envs":
        parts[0] = "rewardlab_envs"
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, tuple[Path, ast.Module]]:
    files = [
        *ROOT.glob("rewardlab/**/*.py"),
        *ROOT.glob("envs/*.py"),
        *ROOT.glob("experiments/*.py"),
        *ROOT.glob("benchmarks/*.py"),
    ]
    return {_module_name(path): (path, ast.parse(path.read_text(), str(path))) for path in files}


SOURCES = _sources()


def _imports(module: str, tree: ast.Module) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, imported names) of every import statement, at any depth."""
    package = module if SOURCES[module][0].name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base, [alias.name for alias in node.names]))
    return found


def _package(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "rewardlab":
        return None
    return "rewardlab" if len(parts) == 1 else ".".join(parts[:2])


def test_no_private_name_is_imported_from_another_module():
    offences = []
    for module, (path, tree) in SOURCES.items():
        for line, imported, names in _imports(module, tree):
            if imported == module or not imported.startswith(("rewardlab", "experiments", "benchmarks")):
                continue
            offences += [
                f"{path.relative_to(ROOT)}:{line}: {imported}.{name}"
                for name in names
                if name.startswith("_")
                and not name.startswith("__")
                and f"{imported}.{name}" not in SOURCES  # a module is not a private name
            ]
    assert not offences, "private names imported across modules:\n" + "\n".join(offences)


def _module_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = collections.defaultdict(set)
    for module, (_, tree) in SOURCES.items():
        for _, imported, names in _imports(module, tree):
            targets = [f"{imported}.{name}" for name in names if f"{imported}.{name}" in SOURCES] or [imported]
            graph[module].update(target for target in targets if target in SOURCES and target != module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_import_graph_has_no_cycles():
    # A package's __init__ re-exports its modules; an import of the package face by one of its own
    # modules would close a loop through it, so faces count like any other module.
    cycles = _cycles(_module_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(cycle) for cycle in cycles)


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", sorted(FLOORS))
def test_packages_import_only_lower_floors(package):
    offences = []
    for module, (path, tree) in SOURCES.items():
        if _package(module) != package or (package == "rewardlab" and module != "rewardlab"):
            continue
        for line, imported, _ in _imports(module, tree):
            target = _package(imported)
            if target is None or target == package:
                continue
            if target not in FLOORS:
                offences.append(f"{path.relative_to(ROOT)}:{line}: {imported} is not in the layer table")
            elif FLOORS[target] >= FLOORS[package] and target not in (
                "rewardlab._types",
                "rewardlab._checks",
                "rewardlab._io",
                "rewardlab.linalg",
            ):
                offences.append(
                    f"{path.relative_to(ROOT)}:{line}: {package} (floor {FLOORS[package]}) imports {imported} (floor {FLOORS[target]})"
                )
    assert not offences, "imports that do not run down a floor:\n" + "\n".join(offences)


def test_every_library_package_has_a_floor():
    packages = {_package(module) for module in SOURCES if module.startswith("rewardlab.") or module == "rewardlab"}
    assert packages <= set(FLOORS), f"add {sorted(packages - set(FLOORS))} to FLOORS and to docs/concepts.md"


def test_environments_import_nothing_of_the_library():
    offences = [
        f"{path.relative_to(ROOT)}:{line}: {imported}"
        for module, (path, tree) in SOURCES.items()
        if module.startswith("rewardlab_envs")
        for line, imported, _ in _imports(module, tree)
        if imported.startswith(("rewardlab.", "experiments", "benchmarks")) or imported == "rewardlab"
    ]
    assert not offences, offences


def test_agents_and_torch_stay_in_rl_and_above():
    offences = []
    for module, (path, tree) in SOURCES.items():
        package = _package(module)
        if (
            package is None
            or FLOORS.get(package, 99) >= FLOORS["rewardlab.rl"]
            or str(path.relative_to(ROOT)) in AGENT_EXCEPTIONS
        ):
            continue
        offences += [
            f"{path.relative_to(ROOT)}:{line}: {imported}"
            for line, imported, _ in _imports(module, tree)
            if imported.split(".")[0] in AGENT_PACKAGES
            and not (package in TORCH_PACKAGES and imported.split(".")[0] == "torch")
        ]
    assert not offences, "Stable-Baselines3/torch below rl:\n" + "\n".join(offences)
