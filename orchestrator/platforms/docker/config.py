"""The config folder of each validator container: ``node.yaml`` and ``genesis.json``, mounted
read-only at ``/etc/aitbc`` as the chart mounts its ConfigMap.

The config is the local network's ``node-<i>.yaml`` (``local.network.write_network``: same
genesis, keys, peers and 127.0.0.1 ports, the containers sharing the host's network) as the
chart writes it for a pod: the genesis at ``/etc/aitbc/genesis.json``, the key index from the
container's name (``index: auto``, ``POD_NAME``), the data in ``/data`` (the named volume) and
no admin token in the file (the container gets it in ``AITBC_ADMIN_TOKEN``, the pod from its
Secret). The local configs hold the token and are private to the user that wrote them; these
are readable by the container's user (uid 10001) and hold no secret.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml
from aitbc_node.commands.genesis_cmd import LocalTestnet
from aitbc_node.config import KeySpec, load_node_config
from aitbc_node.errors import ConfigError

from orchestrator.errors import PlatformError
from orchestrator.platforms.validator_container import (
    CONFIG_DIR,
    CONFIG_FILE,
    DATA_DIR,
    GENESIS_FILE,
)

__all__ = ["container_config_text", "write_container_configs"]

FOLDER_MODE = 0o755
FILE_MODE = 0o644


def container_config_text(local_config: Path) -> str:
    """The container's ``node.yaml`` made from the local ``node-<i>.yaml`` (see the module
    docstring). Raises PlatformError naming the file."""
    try:
        config = load_node_config(local_config)
    except ConfigError as error:
        raise PlatformError(f"cannot make the container config: {error}") from None
    seed = config.key.seed if config.key is not None else None
    container = config.model_copy(
        update={
            "genesis": f"{CONFIG_DIR}/{GENESIS_FILE}",
            "key": KeySpec(seed=seed, index="auto"),
            "data_dir": DATA_DIR,
            "admin_token": None,
        }
    )
    document = container.model_dump(mode="json", exclude_none=True)
    header = (
        "# A validator container's config (aitbc-testnet --platform docker), from "
        f"{local_config.name}:\n# the index comes from POD_NAME, the admin token from "
        "AITBC_ADMIN_TOKEN.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False)


def write_container_configs(testnet: LocalTestnet, root: Path) -> dict[int, Path]:
    """``root/node-<i>/`` with ``node.yaml`` and ``genesis.json`` for every validator of
    ``testnet``, readable by every user; validator index -> folder."""
    folders: dict[int, Path] = {}
    _readable_folder(root)
    for node in testnet.nodes:
        folder = root / f"node-{node.index}"
        _readable_folder(folder)
        _write_readable(folder / CONFIG_FILE, container_config_text(node.config))
        shutil.copyfile(testnet.genesis_path, folder / GENESIS_FILE)
        os.chmod(folder / GENESIS_FILE, FILE_MODE)
        folders[node.index] = folder
    return folders


def _readable_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, FOLDER_MODE)


def _write_readable(path: Path, text: str) -> None:
    path.write_text(text)
    os.chmod(path, FILE_MODE)
