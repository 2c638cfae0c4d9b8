"""Faults: the kinds (``kinds.py``, the one definition), applying one on a platform
(``driver.py``), the timeline that applies and clears a plan's faults at their times
(``timeline.py``), the validators' fault API client shared by the platforms
(``node_faults.py``) and the timeline's records kept in the run directory (``records.py``)."""
