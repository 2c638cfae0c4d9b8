"""Settings shared by every test folder. Keep this file small: fixtures of one folder belong in
that folder's own conftest.py."""

from __future__ import annotations

import os

from hypothesis import settings

# The machines that run the tests have 2 cores and run other jobs: a per-example wall-clock
# deadline only produces flaky failures. Tests that need one set it with @settings.
settings.register_profile("aitbc", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "aitbc"))
