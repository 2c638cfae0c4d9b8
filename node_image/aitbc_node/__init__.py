"""The AITBC validator node: consensus core, ledger, simulator, runtime."""

import os

__version__ = "0.1.0"

#: gRPC core's legacy I/O paths instead of its EventEngine ones, unless the environment already
#: says otherwise. Set here, before anything imports grpc (it reads the variable at start-up).
#: Measured with 100 idle validators on 2 cores (5 s blocks): 10.2 -> 6.0 ms CPU per second per
#: validator, the gRPC core threads 4.5 -> 1.4 ms/s (each node holds ~200 HTTP/2 connections,
#: and the EventEngine threads wake for each of them). A gRPC that no longer knows one of these
#: switches logs "Unknown experiment" once at start and runs on (tests/node/test_grpc_env.py
#: fails first: it checks that grpc starts without that error).
GRPC_EXPERIMENTS = (
    "-event_engine_client,-event_engine_listener,-event_engine_for_all_other_endpoints,"
    "-event_engine_callback_cq"
)
os.environ.setdefault("GRPC_EXPERIMENTS", GRPC_EXPERIMENTS)
#: gRPC core logs at ERROR unless told otherwise: its INFO lines ("Got goaway" from every peer
#: link when a 100-validator testnet stops) fill node logs and the CLI's output.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
