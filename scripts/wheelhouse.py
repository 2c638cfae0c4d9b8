"""Prepare the node image's wheelhouse on the host, so that the image build needs no network.

    python scripts/wheelhouse.py build/wheelhouse

Downloads binary wheels for the image's interpreter (CPython 3.11, glibc Linux, this machine's
architecture) of everything the Dockerfile installs, resolved from the package index in one go
(``--only-binary :all:`` with the image's platform tags, so they fit the image whatever Python
runs this script), and writes three lists next to them:

- ``requirements.txt``: what the runtime venv installs, the project's runtime dependencies
  (pyproject.toml ``[project].dependencies``);
- ``tools.txt``: what the builder stage installs to make the project's wheel: its build
  requirements and grpcio-tools (resolved together with the runtime protobuf and grpcio, so that
  the gRPC stubs it generates match them);
- ``wheels.txt``: the wheel files, one a line. The Dockerfile copies it before installing from
  the bind-mounted wheelhouse: Podman's build cache does not look inside bind mounts, so this
  list is what makes a changed wheelhouse rebuild the dependency layer. Written last: its
  presence means the download completed (make's target file).

The folder is written from scratch, so no stale version lingers in it.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: The image's interpreter (both bases: python:3.11-slim and the local Debian 12 base).
PYTHON_VERSION = "3.11"
ABI = "cp311"
#: Debian 12 has glibc 2.36: every manylinux tag up to it fits.
GLIBC_MINOR = 36
#: Both stages first upgrade the venv's pip (Debian 12's is 23.0) from the wheelhouse.
PIP = "pip>=24"
#: The builder generates the gRPC stubs with it (as `make proto` does).
GRPC_TOOLS = "grpcio-tools>=1.66"


def image_requirements(pyproject: Path) -> tuple[list[str], list[str]]:
    """(runtime requirements, builder tools) of the image, from ``pyproject``."""
    document = tomllib.loads(pyproject.read_text())
    runtime = list(document["project"]["dependencies"])
    tools = [*document["build-system"]["requires"], GRPC_TOOLS]
    return runtime, tools


def platform_tags(machine: str) -> list[str]:
    """``--platform`` values for a glibc Linux of ``machine`` (pip does not widen them itself)."""
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine.lower())
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, 4, -1)]
    tags.append(f"manylinux2014_{arch}")
    if arch in ("x86_64", "i686"):
        tags += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    return tags


def download(out: Path, requirements: list[str], machine: str) -> None:
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--only-binary", ":all:", "--python-version", PYTHON_VERSION,
        "--implementation", "cp", "--abi", ABI, "--dest", str(out),
    ]  # fmt: skip
    for tag in platform_tags(machine):
        command += ["--platform", tag]
    subprocess.run([*command, *requirements], check=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python scripts/wheelhouse.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    runtime, tools = image_requirements(REPO / "pyproject.toml")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    try:
        download(out, [PIP, *runtime, *tools], platform.machine())
    except subprocess.CalledProcessError as error:
        print(
            f"wheelhouse: pip download into {out} failed (exit {error.returncode}): every "
            "dependency needs a binary wheel for CPython 3.11 on glibc Linux, and the package "
            "index must be reachable",
            file=sys.stderr,
        )
        return 1
    (out / "requirements.txt").write_text("\n".join(runtime) + "\n")
    (out / "tools.txt").write_text("\n".join(tools) + "\n")
    wheels = sorted(path.name for path in out.glob("*.whl"))
    (out / "wheels.txt").write_text("\n".join(wheels) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
