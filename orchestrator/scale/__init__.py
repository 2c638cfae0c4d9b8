"""``aitbc-testnet scale``: one campaign per validator count, and the report of how throughput,
finality, CPU and memory change with N (``plan.py`` the sweep, ``sweep.py`` running it,
``model.py`` scale.json, ``render.py`` scale.md and scale.html)."""
