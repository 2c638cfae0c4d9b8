"""The chart ships inside the package: a wheel built the way any user builds one (an sdist of
the sources, then a wheel from it, as ``python -m build`` does) and installed outside the
source tree renders ``helm/aitbc-testnet`` exactly as the checkout does. The node image's copy
is checked by tests/containers/test_image_chart.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from chart_support import CHART_DIR, REPO

from orchestrator.platforms.kubernetes import chart_values

pytestmark = pytest.mark.slow

#: What a wheel is built from (the generated gRPC stubs come along inside node_image/).
SOURCES = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "orchestrator",
    "loadgen",
    "node_image",
    "helm/aitbc-testnet",
)
#: Bound on each build or install step (seconds on an idle machine).
STEP_TIMEOUT_S = 600.0
IN_WHEEL = "orchestrator/chart/aitbc-testnet/"


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _build_wheel(workdir: Path) -> Path:
    """sdist of a copy of the sources, then a wheel from that sdist; returns the wheel."""
    source = workdir / "src"
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    build_sdist = "import sys, setuptools.build_meta as m; m.build_sdist(sys.argv[1])"
    _run([sys.executable, "-c", build_sdist, str(workdir / "sdist")], cwd=source)
    (sdist,) = (workdir / "sdist").glob("*.tar.gz")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(workdir / "dist"), str(sdist)],
        cwd=workdir,
    )  # fmt: skip
    (wheel,) = (workdir / "dist").glob("*.whl")
    return wheel


def test_the_checkout_renders_its_own_chart() -> None:
    assert chart_values.bundled_chart_dir() == CHART_DIR == chart_values.CHART_DIR


def test_an_installed_wheel_renders_the_chart_it_ships(
    tmp_path: Path, checkout_manifests: dict[str, bytes]
) -> None:
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name.removeprefix(IN_WHEEL) for name in archive.namelist() if IN_WHEEL in name}
    chart_files = {
        path.relative_to(CHART_DIR).as_posix() for path in CHART_DIR.rglob("*") if path.is_file()
    }
    assert shipped == chart_files

    site = tmp_path / "site"
    _run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
         str(wheel)],
        cwd=tmp_path,
    )  # fmt: skip
    # The installed package alone, run from outside the source tree (its dependencies come from
    # this venv, whose editable install of the checkout comes after PYTHONPATH).
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}
    where = "from orchestrator.platforms.kubernetes.chart_values import CHART_DIR as d; print(d)"
    chart = Path(_run([sys.executable, "-c", where], cwd=tmp_path, env=env).strip())
    assert chart == site / IN_WHEEL.rstrip("/")

    out = tmp_path / "installed"
    _run([str(site / "bin" / "aitbc-testnet"), "render", "devnet-smoke", "--out", str(out)],
         cwd=tmp_path, env=env)  # fmt: skip
    assert {path.name: path.read_bytes() for path in out.iterdir()} == checkout_manifests
