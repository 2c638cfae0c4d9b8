"""The capacity search (``aitbc-testnet search``): open-loop load steps up, then bisection, to
the highest rate the network carries within its service level, each rate measured over several
trials with a confidence interval; the load generator checks itself and is grown rather than
mistaken for the network. ``bisection.py`` is the logic, ``live.py`` and ``simulated.py`` the
trials on a live testnet and in the simulator, ``runner.py`` a whole search, ``model.py`` and
``render.py`` its report."""
