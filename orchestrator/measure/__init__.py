"""Measuring a run: PromQL and the scrape job names (``promql.py``), measurements over the
measured window (``measurer.py``), the safety checks over every validator's chain
(``safety.py``), the criteria (``criteria.py``) and the dashboards' queries
(``dashboards.py``)."""
