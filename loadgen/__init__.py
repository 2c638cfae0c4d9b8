"""The AITBC load generator: Locust users and load shapes (``loadgen/locustfile.py``) and a
plain client for quick bursts (``loadgen.client``).

Importing the package imports nothing else: the locustfile must import Locust (gevent's
monkey-patching) before any gRPC module, and ``loadgen.client`` must stay free of Locust and
gevent.
"""
