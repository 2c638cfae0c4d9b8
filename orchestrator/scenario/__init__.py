"""Scenarios: what the user wrote (``model.py``, read by ``loader.py`` with line-numbered
errors, ``--set`` overrides applied) and the frozen plan resolved from it (``plan.py``: voting
power, durations, fault targets as validator ids). The built-in scenarios are ``builtins/``."""
