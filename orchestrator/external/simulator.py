"""The node's simulator as an external system: its command line (``python -m aitbc_node.cli
sim ...``) and its ``--json`` output contract::

    aitbc-node sim --validators N --authorities K --mode fast|balanced|secure|auto --blocks B
        --seed S [--latency-ms M] [--partition START:END:FRACTION]... [--crash START:END:COUNT]...
        [--equivocators COUNT] [--crypto real|modeled] [--json]

Times are simulated seconds; ``--json`` prints one object with at least committed_height,
safety_violations, slashed_validators, simulated_seconds, wall_seconds, messages_sent, mode,
crypto and finality_ms {p50, p99}. Which flags a plan becomes is ``platforms/sim/flags.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.errors import PlatformError

__all__ = ["SIM_MODULE", "SimOutput", "SimRunResult", "parse_sim_output", "sim_argv"]

SIM_MODULE = "aitbc_node.cli"
"""The simulator runs as ``<python> -m aitbc_node.cli sim ...``, so no PATH is needed."""


def sim_argv(python: str, flags: Sequence[str]) -> tuple[str, ...]:
    """The simulator's full command line for ``flags`` (what follows ``sim``)."""
    return (python, "-m", SIM_MODULE, "sim", *flags)


class _SimFinality(BaseModel):
    model_config = ConfigDict(extra="allow")
    p50: float | None = None
    p99: float | None = None


class SimOutput(BaseModel):
    """The simulator's ``--json`` object (the contract's fields; anything else is kept)."""

    model_config = ConfigDict(extra="allow")
    committed_height: int
    safety_violations: int | list[Any]
    slashed_validators: int | list[Any]
    simulated_seconds: float
    wall_seconds: float
    messages_sent: int
    mode: str
    crypto: str
    finality_ms: _SimFinality


@dataclass(frozen=True)
class SimRunResult:
    """One finished simulation. Always ``simulated: True``: these numbers come from the
    discrete-event simulator, not from a running testnet."""

    run_id: str
    scenario: str
    command: tuple[str, ...]
    returncode: int
    committed_height: int
    safety_violations: int
    slashed_validators: int
    slashed_ids: tuple[int, ...]
    simulated_seconds: float
    wall_seconds: float
    messages_sent: int
    mode: str
    crypto: str
    finality_p50_ms: float | None
    finality_p99_ms: float | None
    notes: tuple[str, ...]
    not_simulated: tuple[str, ...]
    raw: Mapping[str, Any] = field(default_factory=dict)
    simulated: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "simulated": self.simulated,
            "run_id": self.run_id,
            "scenario": self.scenario,
            "command": list(self.command),
            "returncode": self.returncode,
            "committed_height": self.committed_height,
            "safety_violations": self.safety_violations,
            "slashed_validators": self.slashed_validators,
            "slashed_ids": list(self.slashed_ids),
            "simulated_seconds": self.simulated_seconds,
            "wall_seconds": self.wall_seconds,
            "messages_sent": self.messages_sent,
            "mode": self.mode,
            "crypto": self.crypto,
            "finality_ms": {"p50": self.finality_p50_ms, "p99": self.finality_p99_ms},
            "notes": list(self.notes),
            "not_simulated": list(self.not_simulated),
            "output": dict(self.raw),
        }


def parse_sim_output(
    stdout: str,
    *,
    run_id: str,
    scenario: str,
    notes: Sequence[str],
    not_simulated: Sequence[str],
    command: Sequence[str],
    returncode: int,
) -> SimRunResult:
    """Build the result of run ``run_id`` of ``scenario`` from the simulator's stdout, with
    the notes of the flag mapping. Raises PlatformError when stdout holds no JSON object that
    follows the contract."""
    payload = _json_object(stdout)
    if payload is None:
        raise PlatformError(f"the simulator (exit {returncode}) printed no JSON object on stdout")
    try:
        output = SimOutput.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise PlatformError(
            f"the simulator's JSON does not follow the contract ({problems}); check that the "
            "node package matches this orchestrator"
        ) from None
    slashed = output.slashed_validators
    slashed_ids = (
        tuple(v for v in slashed if isinstance(v, int) and not isinstance(v, bool))
        if isinstance(slashed, list)
        else ()
    )
    violations = output.safety_violations
    return SimRunResult(
        run_id=run_id,
        scenario=scenario,
        command=tuple(command),
        returncode=returncode,
        committed_height=output.committed_height,
        safety_violations=len(violations) if isinstance(violations, list) else violations,
        slashed_validators=len(slashed) if isinstance(slashed, list) else slashed,
        slashed_ids=slashed_ids,
        simulated_seconds=output.simulated_seconds,
        wall_seconds=output.wall_seconds,
        messages_sent=output.messages_sent,
        mode=output.mode,
        crypto=output.crypto,
        finality_p50_ms=output.finality_ms.p50,
        finality_p99_ms=output.finality_ms.p99,
        notes=tuple(notes),
        not_simulated=tuple(not_simulated),
        raw=payload,
    )


def _json_object(stdout: str) -> dict[str, Any] | None:
    text = stdout.strip()
    candidates = [text] + [line for line in reversed(text.splitlines()) if line.startswith("{")]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None
