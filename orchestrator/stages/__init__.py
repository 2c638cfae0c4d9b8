"""The stages of a campaign, each a library function the CLI commands and the campaign share:
``up`` (deploy, wait ready), ``load`` (a load window with its fault timeline; a burst),
``fault`` (one fault now), ``collect`` (measure, check, judge), ``report`` (render, compare),
``down`` (tear down); ``campaign`` sequences them, ``simulate`` runs a plan in the simulator.
Every stage drives a platform only through its capabilities (``platforms.capabilities``)."""
