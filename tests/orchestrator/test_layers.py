"""The orchestrator's import direction (docs/architecture.md, "The orchestrator"), checked on
the source: every ``orchestrator`` import of every module must be one its layer allows, no
command module imports another command (only what they share), no platform implementation
imports another (but the docker platform builds on the local platform's parts, never on its
``LocalPlatform``), nothing imports or reaches into a private name (``_x``) of another module,
and no module grows past ~600 lines without saying why in its docstring."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "orchestrator"
MAX_LINES = 600
LONG_MODULE_REASON = "longer than 600 lines because"

LOW = ("orchestrator.errors", "orchestrator.scenario", "orchestrator.faults.kinds")
LAYERS: dict[str, tuple[str, ...]] = {
    # module (or package) prefix: the orchestrator modules it may import
    "orchestrator": (),
    "orchestrator.errors": (),
    "orchestrator.scenario.durations": (),
    "orchestrator.faults.kinds": ("orchestrator.scenario.durations",),
    "orchestrator.scenario": LOW,
    "orchestrator.external": ("orchestrator.errors", "orchestrator.external"),
    "orchestrator.report": (
        "orchestrator.errors",
        "orchestrator.faults.kinds",
        "orchestrator.report",
    ),
    "orchestrator.measure": (
        *LOW,
        "orchestrator.external",
        "orchestrator.report",
        "orchestrator.measure",
    ),
    "orchestrator.history": ("orchestrator.errors", "orchestrator.report", "orchestrator.history"),
    "orchestrator.platforms.capabilities": (*LOW, "orchestrator.external"),
    "orchestrator.platforms.run_dirs": ("orchestrator.errors",),
    "orchestrator.faults": (
        *LOW,
        "orchestrator.external",
        "orchestrator.platforms.capabilities",
        "orchestrator.faults",
    ),
    "orchestrator.platforms": (
        *LOW,
        "orchestrator.external",
        "orchestrator.faults",
        "orchestrator.measure.promql",
        "orchestrator.platforms.capabilities",
        "orchestrator.platforms.run_dirs",
        "orchestrator.platforms.genesis",
        "orchestrator.platforms.loadgen_env",
        "orchestrator.platforms.validator_container",
    ),
    "orchestrator.stages": (
        *LOW,
        "orchestrator.external",
        "orchestrator.faults",
        "orchestrator.measure",
        "orchestrator.report",
        "orchestrator.platforms.capabilities",
        "orchestrator.stages",
    ),
    "orchestrator.search": (
        *LOW,
        "orchestrator.external",
        "orchestrator.measure",
        "orchestrator.report",
        "orchestrator.platforms.capabilities",
        "orchestrator.stages",
        "orchestrator.search",
    ),
    "orchestrator.commands": (
        *LOW,
        "orchestrator.external",
        "orchestrator.faults",
        "orchestrator.measure",
        "orchestrator.report",
        "orchestrator.history",
        "orchestrator.search",
        "orchestrator.platforms",
        "orchestrator.stages",
        "orchestrator.scale",
        "orchestrator.commands",
    ),
    "orchestrator.cli": ("orchestrator",),
}
LAYERS["orchestrator.scale"] = (*LAYERS["orchestrator.stages"], "orchestrator.scale")
PLATFORM_IMPLEMENTATIONS = ("local", "kubernetes", "sim", "docker")
BUILDS_ON = {"docker": "local"}
"""A platform implementation that runs on another's parts (the docker platform's Prometheus,
Locust, network files, readiness and run state are the local platform's)."""
NOT_A_PART = ("orchestrator.platforms.local.platform",)
"""What a platform building on another's parts must not import: the other platform itself."""
SHARED_BY_COMMANDS = ("options", "output", "progress")


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module

    @property
    def imports(self) -> list[tuple[int, str]]:
        """(line, module) of every orchestrator import (``from pkg import mod`` counts as
        ``pkg.mod`` when ``mod`` is a module)."""
        found = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                found += [(node.lineno, a.name) for a in node.names if _ours(a.name)]
            elif isinstance(node, ast.ImportFrom) and node.module and _ours(node.module):
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    target = candidate if _is_module(candidate) else node.module
                    found.append((node.lineno, target))
        return found


def _ours(name: str) -> bool:
    return name == "orchestrator" or name.startswith("orchestrator.")


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split("."))
    return (ROOT / relative).with_suffix(".py").is_file() or (
        ROOT / relative / "__init__.py"
    ).is_file()


def _modules() -> list[Module]:
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules.append(Module(".".join(parts), path, ast.parse(path.read_text())))
    return modules


MODULES = _modules()


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _layer(name: str) -> str:
    return max((prefix for prefix in LAYERS if _under(name, prefix)), key=len)


def _allowed(module: str) -> tuple[str, ...]:
    allowed = LAYERS[_layer(module)]
    for implementation in PLATFORM_IMPLEMENTATIONS:
        package = f"orchestrator.platforms.{implementation}"
        if _under(module, package):
            allowed = (*allowed, package)
            if implementation in BUILDS_ON:
                allowed = (*allowed, f"orchestrator.platforms.{BUILDS_ON[implementation]}")
    return allowed


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_imports_follow_the_layers(module: Module) -> None:
    allowed = _allowed(module.name)
    wrong = [
        f"{module.path.relative_to(ROOT)}:{line}: imports {target}"
        for line, target in module.imports
        if not any(_under(target, prefix) for prefix in allowed)
    ]
    assert not wrong, f"{_layer(module.name)} may import only {allowed}:\n" + "\n".join(wrong)


def test_commands_share_only_their_options_and_output_and_never_import_the_cli() -> None:
    wrong = []
    for module in MODULES:
        if not _under(module.name, "orchestrator.commands"):
            continue
        for line, target in module.imports:
            other_command = _under(target, "orchestrator.commands") and target not in {
                f"orchestrator.commands.{shared}" for shared in SHARED_BY_COMMANDS
            }
            if target == "orchestrator.cli" or other_command:
                wrong.append(f"{module.path.relative_to(ROOT)}:{line}: imports {target}")
    assert not wrong, "\n".join(wrong)


def test_platform_implementations_do_not_import_each_other() -> None:
    wrong = []
    for module in MODULES:
        for implementation in PLATFORM_IMPLEMENTATIONS:
            if not _under(module.name, f"orchestrator.platforms.{implementation}"):
                continue
            others = [
                f"orchestrator.platforms.{other}"
                for other in PLATFORM_IMPLEMENTATIONS
                if other not in (implementation, BUILDS_ON.get(implementation))
            ]
            wrong += [
                f"{module.path.relative_to(ROOT)}:{line}: imports {target}"
                for line, target in module.imports
                if any(_under(target, other) for other in others)
                or (implementation in BUILDS_ON and _imports_a_platform(target))
            ]
    assert not wrong, "\n".join(wrong)


def _imports_a_platform(target: str) -> bool:
    """Whether ``target`` is another platform's class module, or its package's ``__init__``
    (which exports that class)."""
    packages = {name.rsplit(".", 1)[0] for name in NOT_A_PART}
    return target in NOT_A_PART or target in packages


def test_no_private_name_is_imported_or_reached_into() -> None:
    wrong = []
    for module in MODULES:
        imported: set[str] = set()
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        wrong.append(f"{module.name}:{node.lineno}: imports {alias.name}")
                    imported.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                imported.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in imported
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                wrong.append(
                    f"{module.name}:{node.lineno}: reaches into {node.value.id}.{node.attr}"
                )
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_modules_are_small_or_say_why_not(module: Module) -> None:
    lines = len(module.path.read_text().splitlines())
    docstring = ast.get_docstring(module.tree) or ""
    assert lines <= MAX_LINES or LONG_MODULE_REASON in docstring, (
        f"{module.path.relative_to(ROOT)} has {lines} lines: split it by concern, or say in "
        f"its docstring why it is {LONG_MODULE_REASON} ..."
    )
