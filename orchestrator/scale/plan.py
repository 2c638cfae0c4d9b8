"""The sweep of ``aitbc-testnet scale``: which validator counts run, with how many authorities,
and which of them are simulated.

* ``--validators 4,16,64,100``: distinct counts, each at least ``MIN_VALIDATORS`` (4: one
  crash-faulty validator needs 3f+1) and at most the scenario model's limit; run in ascending
  order.
* Authorities keep the scenario's proportion: a scenario where every validator is an authority
  stays so; otherwise ``round(N * A / V)`` of the scenario's A authorities among V validators,
  at least ``MIN_VALIDATORS`` (a BFT quorum of authorities needs 3f+1 of them) and at most N.
  The devnet (21 of 100) gives 4 at N = 4 and 16, 13 at 64, 21 at 100.
* Everything else (load, faults by voting-power fraction, criteria, block interval) is the
  scenario's: the same offered load at every N, so the figures compare like with like.
* A count above ``simulate_above`` runs in the simulator (``--platform sim``: all of them), and
  every number it gives is marked simulated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import UsageError
from orchestrator.scenario.model import MAX_VALIDATORS

MIN_VALIDATORS = 4
LOCAL_SIMULATE_ABOVE = 100
"""The largest N the local platform runs for real by default (the 100-validator devnet is
what a 2-core, 24 GiB host carries); larger counts are simulated."""


@dataclass(frozen=True)
class ScalePoint:
    """One campaign of the sweep."""

    validators: int
    authorities: int
    simulated: bool

    def overrides(self) -> tuple[str, ...]:
        """The ``--set`` overrides that turn the scenario into this point's."""
        return (
            f"network.validators={self.validators}",
            f"network.authorities={self.authorities}",
        )


def parse_validator_counts(text: str, flag: str = "--validators") -> tuple[int, ...]:
    """``"4,16,64"`` -> (4, 16, 64), sorted and distinct. UsageError (exit 2) naming ``flag``
    for anything else."""
    counts: set[int] = set()
    for item in (part.strip() for part in text.split(",")):
        try:
            count = int(item)
        except ValueError:
            raise UsageError(
                f"{flag} {text!r}: {item!r} is not a whole number; give counts separated by "
                "commas, e.g. 4,16,64,100"
            ) from None
        if not MIN_VALIDATORS <= count <= MAX_VALIDATORS:
            raise UsageError(
                f"{flag} {text!r}: {count} validators is out of range: each count must be "
                f"between {MIN_VALIDATORS} (3f+1 with f = 1) and {MAX_VALIDATORS}"
            )
        counts.add(count)
    return tuple(sorted(counts))


def scaled_authorities(validators: int, base_validators: int, base_authorities: int) -> int:
    """Authorities at ``validators`` keeping the scenario's proportion (module docstring)."""
    if base_authorities >= base_validators:
        return validators
    share = round(validators * base_authorities / base_validators)
    return min(validators, max(MIN_VALIDATORS, share))


def scale_points(
    counts: Sequence[int],
    *,
    base_validators: int,
    base_authorities: int,
    simulate_above: int | None,
) -> tuple[ScalePoint, ...]:
    """The sweep's points; ``simulate_above`` None simulates none, 0 all."""
    return tuple(
        ScalePoint(
            validators=count,
            authorities=scaled_authorities(count, base_validators, base_authorities),
            simulated=simulate_above is not None and count > simulate_above,
        )
        for count in sorted(set(counts))
    )
