"""setuptools hook of the project (everything else is in pyproject.toml): the Helm chart
``helm/aitbc-testnet`` ships inside the ``orchestrator`` package, as
``orchestrator/chart/aitbc-testnet``, so that an installed package (the node image, any
``pip install`` of a wheel or an sdist) renders the chart it came with
(``orchestrator.platforms.kubernetes.chart_values.bundled_chart_dir``). An editable install
copies nothing: it reads the checkout's ``helm/aitbc-testnet``. MANIFEST.in puts the chart
into sdists.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CHART_SOURCE = Path("helm", "aitbc-testnet")
CHART_IN_PACKAGE = Path("orchestrator", "chart", "aitbc-testnet")


class BuildPyWithChart(build_py):
    """``build_py`` that also copies the chart into the built ``orchestrator`` package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        if not (CHART_SOURCE / "Chart.yaml").is_file():
            raise FileNotFoundError(
                f"the Helm chart {CHART_SOURCE}/Chart.yaml is missing from the source tree "
                "being built: build from a checkout or an sdist that includes helm/aitbc-testnet"
            )
        target = Path(self.build_lib) / CHART_IN_PACKAGE
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(CHART_SOURCE, target)


setup(cmdclass={"build_py": BuildPyWithChart})
