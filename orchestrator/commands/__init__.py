"""Commands of ``aitbc-testnet``, one module each (``register(app)`` adds its command; the CLI
registers every module of this package at import). ``options.py`` and ``output.py`` hold what
the commands share (options and arguments, printing); ``progress.py`` the progress lines. A
command parses its flags, calls its stage (``orchestrator.stages``) and prints."""
