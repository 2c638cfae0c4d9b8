"""Rewrite grpc_tools' absolute imports (`from aitbc.v1 import ...`) into package-relative ones."""

import pathlib
import sys

root = pathlib.Path(sys.argv[1])
for path in root.rglob("*.py"):
    text = path.read_text()
    fixed = text.replace("from aitbc.v1 import", "from aitbc_node.proto.aitbc.v1 import")
    if fixed != text:
        path.write_text(fixed)
for folder in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
    init = folder / "__init__.py"
    if not init.exists():
        init.write_text("")
