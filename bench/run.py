"""``make bench``: run the benchmark sections and print one table.

A section is any module ``bench/bench_<name>.py`` next to this file that defines
``run(quick: bool) -> list[Figure]`` (see ``figures.py``). Sections run in name order, each in
this process; a section that raises is reported and the others still run.

    python bench/run.py                    # every section, full size
    python bench/run.py --only consensus   # one section (repeatable, or comma-separated)
    python bench/run.py --quick            # smaller runs, for a smoke test
    python bench/run.py --json out.json    # also write the figures as JSON

Exit codes: 0 when every section ran (even if a figure MISSED its target: the table says so),
1 when a section failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from figures import Figure  # noqa: E402  (the bench folder is not a package)

SECTION_PREFIX = "bench_"


@dataclass
class SectionResult:
    name: str
    figures: list[Figure] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def discover(directory: Path = BENCH_DIR) -> dict[str, Path]:
    """Section name -> module path, for every ``bench_<name>.py`` in ``directory``."""
    return {
        path.stem[len(SECTION_PREFIX) :]: path
        for path in sorted(directory.glob(f"{SECTION_PREFIX}*.py"))
    }


def load_section(path: Path) -> Callable[[bool], list[Figure]]:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: not a Python module")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    run = getattr(module, "run", None)
    if not callable(run):
        raise ImportError(f"{path}: defines no run(quick: bool) -> list[Figure]")
    return run


def run_section(name: str, path: Path, quick: bool) -> SectionResult:
    result = SectionResult(name)
    started = time.perf_counter()
    try:
        figures = load_section(path)(quick)
        result.figures = [Figure(*figure) for figure in figures]
    except Exception:  # a failing section must not hide the others
        result.error = traceback.format_exc(limit=6)
    result.seconds = time.perf_counter() - started
    return result


def _format_value(value: float | int | str) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def _status(figure: Figure) -> str:
    if figure.met is None:
        return ""
    return "ok" if figure.met else "MISSED"


def render_table(results: Sequence[SectionResult]) -> str:
    header = ("section", "figure", "value", "unit", "target", "status")
    rows: list[tuple[str, ...]] = []
    for result in results:
        for figure in result.figures:
            rows.append(
                (
                    result.name,
                    figure.name,
                    _format_value(figure.value),
                    figure.unit,
                    figure.target,
                    _status(figure),
                )
            )
        if result.error is not None:
            last_line = result.error.strip().splitlines()[-1]
            rows.append((result.name, "(section failed)", "", "", last_line, "ERROR"))
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def to_json(results: Sequence[SectionResult], quick: bool) -> dict[str, object]:
    return {
        "quick": quick,
        "sections": [
            {
                "name": r.name,
                "seconds": round(r.seconds, 3),
                "error": r.error,
                "figures": [f._asdict() for f in r.figures],
            }
            for r in results
        ],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SECTION",
        help="run only these sections (repeatable or comma-separated)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs (no targets)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write JSON")
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sections = discover()
    if args.list:
        print("\n".join(sections))
        return 0
    wanted = [name for item in args.only for name in item.split(",") if name]
    unknown = sorted(set(wanted) - set(sections))
    if unknown:
        print(
            f"bench/run.py: error: --only {', '.join(unknown)}: no such section; "
            f"sections are {', '.join(sections) or '(none)'}",
            file=sys.stderr,
        )
        return 2
    chosen = {name: path for name, path in sections.items() if not wanted or name in wanted}
    results = []
    for name, path in chosen.items():
        print(f"running {name}{' (quick)' if args.quick else ''} ...", file=sys.stderr, flush=True)
        results.append(run_section(name, path, args.quick))
        print(f"  {name} done in {results[-1].seconds:.1f} s", file=sys.stderr, flush=True)
    print(render_table(results))
    for result in results:
        if result.error is not None:
            print(f"\nsection {result.name} failed:\n{result.error}", file=sys.stderr)
    missed = [f.name for r in results for f in r.figures if f.met is False]
    if missed:
        print(f"\nMISSED targets: {', '.join(missed)}")
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(results, args.quick), indent=2) + "\n")
    return 1 if any(r.error is not None for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
