"""Reports: the versioned model of report.json (``model.py``), markdown and HTML with plots
(``render.py``, ``templates/``), JUnit XML (``junit.py``), baseline comparison
(``baseline.py``) and where a report comes from (``provenance.py``)."""
