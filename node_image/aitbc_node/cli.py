"""``aitbc-node``: the validator node's command line (the only module of the node that prints).

Commands: ``sim`` (the deterministic simulator), ``genesis`` (a local testnet's genesis and
configs), ``run`` (a validator). Exit codes: 0 ok, 1 the run failed its own check, 2 bad input,
3 infrastructure failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from aitbc_node.byzantine import BEHAVIOURS
from aitbc_node.errors import AitbcError, ConfigError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INFRA = 3


def _triple(flag: str, kind: Callable[[str], float]) -> Callable[[str], tuple[float, float, float]]:
    def parse(text: str) -> tuple[float, float, float]:
        parts = text.split(":")
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(
                f"{flag} {text!r}: expected START:END:{'FRACTION' if kind is float else 'COUNT'}"
                " (simulated seconds), e.g. 5:15:0.5"
            )
        try:
            return float(parts[0]), float(parts[1]), kind(parts[2])
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} {text!r}: not numbers") from None

    return parse


def _scalar(text: str) -> object:
    """A behaviour parameter from the command line: int, float, true/false, or text."""
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _byzantine(
    text: str,
) -> tuple[tuple[int, ...], str, tuple[tuple[str, object], ...], float, float | None]:
    """``IDS:BEHAVIOUR[@KEY=VALUE,...][:START:END]``, e.g. ``5,6:flood@count=50:2:10``."""
    parts = text.split(":")
    if len(parts) not in (2, 4):
        raise argparse.ArgumentTypeError(
            f"--byzantine {text!r}: expected IDS:BEHAVIOUR[@KEY=VALUE,...][:START:END], "
            "e.g. 5:tamper-certificate or 5,6:flood@count=50:2:10"
        )
    try:
        ids = tuple(int(i) for i in parts[0].split(","))
        start, end = (float(parts[2]), float(parts[3])) if len(parts) == 4 else (0.0, None)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--byzantine {text!r}: IDS, START and END are numbers"
        ) from None
    behaviour, _, raw_params = parts[1].partition("@")
    params = []
    for item in filter(None, raw_params.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--byzantine {text!r}: {item!r} is not KEY=VALUE")
        params.append((key, _scalar(value)))
    return ids, behaviour, tuple(params), start, end


def _add_sim(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sim",
        help="run the consensus core under the deterministic network simulator",
        description=(
            "Drive N real consensus cores through a simulated network. Same seed, same run. "
            "Example: aitbc-node sim --validators 100 --authorities 21 --mode balanced "
            "--blocks 50 --seed 1 --partition 5:15:0.5 --json"
        ),
    )
    p.add_argument("--validators", type=int, required=True)
    p.add_argument("--authorities", type=int, required=True)
    p.add_argument("--mode", default="balanced", choices=["fast", "balanced", "secure", "auto"])
    p.add_argument("--blocks", type=int, default=50, help="stop once every honest node has these")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--latency-ms", type=float, default=50.0, help="mean one-way latency")
    p.add_argument("--jitter-ms", type=float, default=None, help="default: latency/4")
    p.add_argument("--drop-rate", type=float, default=0.0, help="probability a message is lost")
    p.add_argument(
        "--partition",
        action="append",
        default=[],
        type=_triple("--partition", float),
        metavar="START:END:FRACTION",
        help="cut FRACTION of the voting power off from START to END (repeatable)",
    )
    p.add_argument(
        "--crash",
        action="append",
        default=[],
        type=_triple("--crash", int),
        metavar="START:END:COUNT",
        help="crash COUNT validators at START, restart them from disk at END (repeatable)",
    )
    p.add_argument("--equivocators", type=int, default=0, help="byzantine double-signers")
    p.add_argument(
        "--byzantine",
        action="append",
        default=[],
        type=_byzantine,
        metavar="IDS:BEHAVIOUR[@K=V,...][:START:END]",
        help="validators IDS run a byzantine behaviour (repeatable); behaviours: "
        + ", ".join(BEHAVIOURS),
    )
    p.add_argument(
        "--clock-skew-ms",
        type=float,
        default=0.0,
        help="honest validators' clocks are off by up to this much (uniform, each)",
    )
    p.add_argument("--crypto", default="real", choices=["real", "modeled"])
    p.add_argument("--stake", default="equal", help="equal | zipf | uniform:LO:HI")
    p.add_argument("--epoch-length", type=int, default=100)
    p.add_argument("--block-interval-ms", type=int, default=None)
    p.add_argument("--load-tps", type=float, default=1000.0, help="modelled offered load")
    p.add_argument("--max-simulated-s", type=float, default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_sim)


def _cmd_sim(args: argparse.Namespace) -> int:
    from aitbc_node.sim import ByzantineSpec, CrashSpec, PartitionSpec, SimConfig, run_simulation

    config = SimConfig(
        validators=args.validators,
        authorities=args.authorities,
        mode=args.mode,
        blocks=args.blocks,
        seed=args.seed,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        drop_rate=args.drop_rate,
        partitions=tuple(PartitionSpec(s, e, f) for s, e, f in args.partition),
        crashes=tuple(CrashSpec(s, e, int(c)) for s, e, c in args.crash),
        equivocators=args.equivocators,
        byzantine=tuple(ByzantineSpec(*spec) for spec in args.byzantine),
        clock_skew_ms=args.clock_skew_ms,
        crypto=args.crypto,
        stake=args.stake,
        epoch_length=args.epoch_length,
        block_interval_ms=args.block_interval_ms,
        load_tps=args.load_tps,
        max_simulated_s=args.max_simulated_s,
    )
    result = run_simulation(config).to_json()
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(
            f"simulated {result['validators']} validators ({result['crypto']} crypto, "
            f"{result['mode']} mode): height {result['committed_height']} in "
            f"{result['simulated_seconds']} s simulated / {result['wall_seconds']} s wall; "
            f"finality p50 {result['finality_ms']['p50']} ms p99 {result['finality_ms']['p99']} ms;"
            f" safety violations {result['safety_violations']}; slashed "
            f"{result['slashed_validators']}; byzantine actions "
            f"{result['byzantine']['actions']}, refused {result['byzantine']['rejected']}"
        )
    return EXIT_FAILED if result["safety_violations"] else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aitbc-node", description="AITBC validator node, genesis tools and simulator."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_sim(sub)
    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


#: Commands contributed by other modules (genesis, run), registered without editing this file.
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = []


def _load_extra_commands() -> None:
    from aitbc_node import commands

    for registrar in commands.REGISTRARS:
        if registrar not in _EXTRA_COMMANDS:
            _EXTRA_COMMANDS.append(registrar)


def main(argv: Sequence[str] | None = None) -> int:
    _load_extra_commands()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"aitbc-node: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except AitbcError as exc:
        print(f"aitbc-node: error: {exc}", file=sys.stderr)
        return EXIT_INFRA
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
