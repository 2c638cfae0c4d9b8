"""``aitbc-node`` subcommands beyond ``sim``, registered without editing ``cli.py``.

``cli.main`` extends its ``_EXTRA_COMMANDS`` with ``REGISTRARS``: each entry takes the
subparsers action and adds one command (with ``set_defaults(handler=...)``; the handler takes
the parsed namespace and returns an exit code). Registrars must be idempotent: ``cli.main`` may
run more than once in a process (tests), so a registrar skips a command that already exists.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from aitbc_node.commands import genesis_cmd, launch_cmd

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

REGISTRARS: list[Registrar] = [genesis_cmd.register, launch_cmd.register]

# -- `aitbc-node run` (owned by the runtime; lives in commands/run_cmd.py) ---------------------
# run_cmd defines `register(sub) -> None`. It is loaded only when the module exists, so the
# genesis command works before the runtime lands; an import error *inside* run_cmd still raises.
try:
    _run_cmd = importlib.import_module("aitbc_node.commands.run_cmd")
except ModuleNotFoundError as error:
    if error.name != "aitbc_node.commands.run_cmd":
        raise
else:
    _run_register = getattr(_run_cmd, "register", None)
    if _run_register is not None and _run_register not in REGISTRARS:
        REGISTRARS.append(_run_register)

__all__ = ["REGISTRARS", "Registrar"]
