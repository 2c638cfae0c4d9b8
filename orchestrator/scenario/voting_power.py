"""Stake tables and voting-power arithmetic: which validators hold which share of the vote.

Pure functions on the standard library only, so the node's genesis generator can call (or move)
``stake_table`` unchanged and both sides agree on every validator's stake. Errors are plain
``ValueError`` subclasses for the same reason; the orchestrator turns them into scenario errors.

Conventions (also in docs/architecture.md):

* Validators are indices ``0..N-1``; the authorities are the first ``K`` (``index < K``).
* Stake specs (the same numbers as the node's testnet genesis, ``aitbc_node.genesis``; a test
  checks it): ``equal`` (1,000,000 each); ``zipf`` (weight ``w_i = 10**18 // (i + 1)``, stake
  ``max(1, 1_000_000 * N * w_i // sum(w))``: validator 0 holds the most); ``uniform:LO:HI``
  (``LO + H(i) % (HI - LO + 1)`` with ``H(i)`` the SHA-256 of the genesis seed and the index,
  framed as ``aitbc_node.crypto.hashing.tagged_hash(b"stake-uniform", seed, index as 8 bytes)``);
  or an explicit list with one integer per validator. The genesis seed is a string; an int
  seed means ``str(seed)``.
* Quorum measures per mode, with A = authorities (count) and S = stake:
  fast: A >= floor(2|A|/3)+1; balanced: that and S >= floor(2S/3)+1; secure: S >= floor(2S/3)+1
  and A >= floor(|A|/3)+1 (oversight). ``auto`` may run in any mode, so a target must hold under
  all three (the intersection).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

BASE_STAKE = 1_000_000
"""Stake of every validator under ``equal``; the scale of ``zipf``."""

STAKE_KINDS = ("equal", "zipf", "uniform:LO:HI", "[explicit list]")
MODES = ("fast", "balanced", "secure", "auto")
FRACTION_LABELS = ("minority-third", "half", "majority", "supermajority")

AUTHORITIES = "authorities"
STAKE = "stake"

_UNIFORM = re.compile(r"^uniform:(\d+):(\d+)$")


class StakeSpecError(ValueError):
    """A stake spec cannot be turned into a stake table."""


class TargetUnreachableError(ValueError):
    """No set of validators satisfies a voting-power target with this validator set."""


@dataclass(frozen=True)
class StakeEntry:
    """One validator of the genesis: its index, bonded stake and whether it is an authority."""

    index: int
    stake: int
    authority: bool


@dataclass(frozen=True)
class PowerFractions:
    """Share of a set of validators by pod count, by stake and by authority count (0..1)."""

    count: float
    stake: float
    authorities: float


@dataclass(frozen=True)
class Window:
    """Allowed integer power ``[low, high]`` of the chosen set under one measure, and the
    value to get as close to as possible (None: a pure constraint, e.g. secure's oversight)."""

    measure: str
    total: int
    low: int
    high: int
    target: float | None


# ----------------------------------------------------------------------------- stake tables


def check_stake_spec(spec: str | Sequence[int], validators: int) -> None:
    """Raise StakeSpecError when ``spec`` is not a valid stake spec for ``validators``."""
    if isinstance(spec, str):
        if spec in ("equal", "zipf"):
            return
        match = _UNIFORM.match(spec)
        if match is None:
            raise StakeSpecError(
                f"unknown stake spec {spec!r}: use equal, zipf, uniform:LO:HI "
                "(e.g. uniform:1000:5000) or a list with one stake per validator"
            )
        low, high = int(match.group(1)), int(match.group(2))
        if low > high:
            raise StakeSpecError(f"stake spec {spec!r}: LO ({low}) must not exceed HI ({high})")
        if high == 0:
            raise StakeSpecError(f"stake spec {spec!r}: HI must be > 0 (total stake would be 0)")
        return
    stakes = list(spec)
    if len(stakes) != validators:
        raise StakeSpecError(
            f"explicit stake list has {len(stakes)} entries but there are {validators} "
            "validators: give exactly one stake per validator"
        )
    for position, stake in enumerate(stakes):
        if isinstance(stake, bool) or not isinstance(stake, int) or stake < 0:
            raise StakeSpecError(
                f"stake of validator {position} is {stake!r}: stakes are integers >= 0"
            )
    if sum(stakes) == 0:
        raise StakeSpecError("explicit stake list sums to 0: at least one stake must be > 0")


def stake_table(
    validators: int, authorities: int, spec: str | Sequence[int], seed: int | str
) -> tuple[StakeEntry, ...]:
    """The genesis stake of every validator, deterministic in (validators, authorities, spec,
    seed): the numbers ``aitbc_node.genesis.make_testnet_genesis`` gives for the same
    arguments. See the module docstring for the formulas. Raises StakeSpecError."""
    if validators < 1:
        raise StakeSpecError(f"validators must be >= 1, got {validators}")
    if not 1 <= authorities <= validators:
        raise StakeSpecError(
            f"authorities must be between 1 and validators ({validators}), got {authorities}"
        )
    check_stake_spec(spec, validators)
    stakes: list[int]
    if not isinstance(spec, str):
        stakes = list(spec)
    elif spec == "equal":
        stakes = [BASE_STAKE] * validators
    elif spec == "zipf":
        stakes = _zipf_stakes(validators)
    else:
        match = _UNIFORM.match(spec)
        assert match is not None  # checked above
        low, high = int(match.group(1)), int(match.group(2))
        span = high - low + 1
        stakes = [low + _uniform_draw(str(seed), i) % span for i in range(validators)]
    return tuple(
        StakeEntry(index=i, stake=stake, authority=i < authorities)
        for i, stake in enumerate(stakes)
    )


def _zipf_stakes(validators: int) -> list[int]:
    weights = [10**18 // (rank + 1) for rank in range(validators)]
    total, weight_sum = BASE_STAKE * validators, sum(weights)
    return [max(1, total * weight // weight_sum) for weight in weights]


def _uniform_draw(seed: str, index: int) -> int:
    """``tagged_hash(b"stake-uniform", seed, index)`` as an integer (length-framed SHA-256,
    the node's ``aitbc_node.crypto.hashing.tagged_hash``)."""
    digest = hashlib.sha256()
    for part in (b"stake-uniform", seed.encode(), index.to_bytes(8, "big")):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return int.from_bytes(digest.digest(), "big")


def _hash_int(domain: str, seed: int, index: int) -> int:
    digest = hashlib.sha256(f"{domain}:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


# ----------------------------------------------------------------------------- fractions


def power_fractions(table: Sequence[StakeEntry], ids: Sequence[int]) -> PowerFractions:
    """Share of ``ids`` by count, stake and authorities (0 when the total is 0)."""
    chosen = set(ids)
    total_stake = sum(entry.stake for entry in table)
    total_authorities = sum(1 for entry in table if entry.authority)
    stake = sum(entry.stake for entry in table if entry.index in chosen)
    authorities = sum(1 for entry in table if entry.authority and entry.index in chosen)
    return PowerFractions(
        count=len(chosen) / len(table) if table else 0.0,
        stake=stake / total_stake if total_stake else 0.0,
        authorities=authorities / total_authorities if total_authorities else 0.0,
    )


def quorum_measures(mode: str) -> tuple[str, ...]:
    """The measures a fraction of voting power is taken under in ``mode`` (oversight aside)."""
    if mode == "fast":
        return (AUTHORITIES,)
    if mode == "secure":
        return (STAKE,)
    if mode in ("balanced", "auto"):
        return (AUTHORITIES, STAKE)
    raise ValueError(f"unknown consensus mode {mode!r}: use one of {', '.join(MODES)}")


def fraction_windows(label: str, mode: str, table: Sequence[StakeEntry]) -> tuple[Window, ...]:
    """The per-measure windows a set must satisfy to be ``label`` of the voting power in
    ``mode``: ``minority-third`` strictly below 1/3 (largest such: the rest keeps a quorum),
    ``half`` neither side reaches a quorum (target 1/2), ``majority`` above 1/2 and below 2/3
    (smallest such), ``supermajority`` at least floor(2T/3)+1 (smallest such)."""
    if label not in FRACTION_LABELS:
        raise ValueError(f"unknown fraction {label!r}: use one of {', '.join(FRACTION_LABELS)}")
    totals = {
        AUTHORITIES: sum(1 for entry in table if entry.authority),
        STAKE: sum(entry.stake for entry in table),
    }
    windows = {m: _main_window(label, m, totals[m]) for m in quorum_measures(mode)}
    if mode in ("secure", "auto"):
        oversight = _oversight_window(label, totals[AUTHORITIES])
        current = windows.get(AUTHORITIES)
        if current is None:
            windows[AUTHORITIES] = oversight
        else:
            windows[AUTHORITIES] = Window(
                AUTHORITIES,
                current.total,
                max(current.low, oversight.low),
                min(current.high, oversight.high),
                current.target,
            )
    return tuple(windows[m] for m in (AUTHORITIES, STAKE) if m in windows)


def _main_window(label: str, measure: str, total: int) -> Window:
    quorum = (2 * total) // 3 + 1
    if label == "minority-third":
        high = (total - 1) // 3  # largest p with 3p < T
        return Window(measure, total, 0, high, float(high))
    if label == "half":
        return Window(measure, total, total - quorum + 1, quorum - 1, total / 2)
    if label == "majority":
        low = total // 2 + 1
        return Window(measure, total, low, (2 * total - 1) // 3, float(low))
    return Window(measure, total, quorum, total, float(quorum))


def _oversight_window(label: str, authorities: int) -> Window:
    oversight = authorities // 3 + 1
    if label == "minority-third":  # the rest keeps the oversight quorum
        return Window(AUTHORITIES, authorities, 0, authorities - oversight, None)
    if label == "supermajority":  # the set itself is a quorum, oversight included
        return Window(AUTHORITIES, authorities, oversight, authorities, None)
    return Window(AUTHORITIES, authorities, 0, authorities, None)


# ----------------------------------------------------------------------------- choosing sets


def resolve_fraction(
    table: Sequence[StakeEntry], mode: str, label: str, seed: int
) -> tuple[int, ...]:
    """Concrete validator ids holding ``label`` of the voting power in ``mode``.

    Every window of ``fraction_windows`` holds for the result (checked); within them the set
    is as close to the target as a few greedy passes and a local search find (exhaustive up to
    14 validators when those miss), then has the fewest members.
    Validator 0 is chosen only when no set without it works. Ties break by a seeded order, so
    the same (table, mode, label, seed) always gives the same ids. Raises
    TargetUnreachableError when the validator set is too small or too lumpy for ``label``.
    """
    windows = fraction_windows(label, mode, table)
    weights = [_weights(entry, windows) for entry in table]
    from_complement = label in ("majority", "supermajority")
    rank = _seeded_rank(len(table), seed)
    power = [
        sum(w / win.total for w, win in zip(ws, windows, strict=True) if win.target is not None)
        for ws in weights
    ]
    orders: list[list[int]] = [
        sorted(range(len(table)), key=lambda i: (-power[i], rank[i])),
        sorted(range(len(table)), key=lambda i: (power[i], rank[i])),
        sorted(range(len(table)), key=lambda i: rank[i]),
    ]
    best: tuple[_Score, tuple[int, ...]] | None = None
    for order in orders:
        if from_complement:  # fill the rest first, validator 0 first: it stays out of the set
            rest_order = [0, *(i for i in order if i != 0)]
            rest = _fill(rest_order, weights, _complement_windows(windows), strict=False)
            chosen = tuple(sorted(set(range(len(table))) - set(rest)))
        else:
            chosen = tuple(sorted(_fill(_zero_last(order), weights, windows, strict=True)))
        score = _score(_sums(chosen, weights, len(windows)), windows, chosen)
        if best is None or (score, chosen) < best:
            best = (score, chosen)
    assert best is not None
    chosen = _polish(best[1], weights, windows, rank)
    violation, has_zero = _score(_sums(chosen, weights, len(windows)), windows, chosen)[:2]
    if (violation > 0 or has_zero) and len(table) <= _EXHAUSTIVE_MAX:
        chosen = _exhaustive(weights, windows) or chosen
        violation = _score(_sums(chosen, weights, len(windows)), windows, chosen)[0]
    if violation > 0:
        raise TargetUnreachableError(_unreachable_message(label, mode, table, windows, chosen))
    return chosen


_EXHAUSTIVE_MAX = 14
"""Up to this many validators, a target the greedy search misses (or meets only with validator
0) is searched exhaustively, so "unreachable" and "0 is unavoidable" are exact there."""


def _exhaustive(
    weights: Sequence[tuple[int, ...]], windows: Sequence[Window]
) -> tuple[int, ...] | None:
    best: tuple[_Score, tuple[int, ...]] | None = None
    for size in range(1, len(weights) + 1):
        for ids in itertools.combinations(range(len(weights)), size):
            score = _score(_sums(ids, weights, len(windows)), windows, ids)
            if score[0] == 0 and (best is None or (score, ids) < best):
                best = (score, ids)
    return None if best is None else best[1]


def resolve_count(table: Sequence[StakeEntry], mode: str, count: int, seed: int) -> tuple[int, ...]:
    """``count`` validator ids in a seeded order: validators that vote in ``mode`` first,
    validator 0 last. Raises TargetUnreachableError when ``count`` exceeds the validators."""
    if not 1 <= count <= len(table):
        raise TargetUnreachableError(
            f"count {count} is not between 1 and the number of validators ({len(table)})"
        )
    measures = quorum_measures(mode)
    rank = _seeded_rank(len(table), seed)

    def votes(entry: StakeEntry) -> bool:
        return (AUTHORITIES in measures and entry.authority) or (
            STAKE in measures and entry.stake > 0
        )

    order = sorted(range(len(table)), key=lambda i: (not votes(table[i]), rank[i]))
    return tuple(sorted(_zero_last(order)[:count]))


_Score = tuple[float, bool, float, int]
"""(window violation, contains validator 0, distance to the targets, size): lower is better.
Validator 0 (the one the CLI talks to first) is avoided whenever a valid set without it exists."""

_POLISH_ROUNDS = 200


def _score(sums: Sequence[int], windows: Sequence[Window], chosen: Sequence[int]) -> _Score:
    violation = _violation(sums, windows) + (0.0 if chosen else 1.0)
    return (round(violation, 12), 0 in chosen, round(_distance(sums, windows), 12), len(chosen))


def _polish(
    start: Sequence[int],
    weights: Sequence[tuple[int, ...]],
    windows: Sequence[Window],
    rank: Sequence[int],
) -> tuple[int, ...]:
    """Local search from ``start``: repeatedly apply the best single add, remove or swap that
    lowers ``_score`` (repairs window violations first, then closes in on the targets).

    Validators with the same non-stake weights form a class; within a class only the
    candidates whose stake is nearest to a useful value (target, low, high) are tried, so a
    round costs O(N log N) rather than O(N^2)."""
    stake_dim = next((k for k, w in enumerate(windows) if w.measure == STAKE), None)

    def klass(i: int) -> tuple[int, ...]:
        return tuple(w for k, w in enumerate(weights[i]) if k != stake_dim)

    def stake(i: int) -> int:
        return weights[i][stake_dim] if stake_dim is not None else 0

    inside = set(start)
    sums = _sums(sorted(inside), weights, len(windows))
    current = _score(sums, windows, sorted(inside))
    for _ in range(_POLISH_ROUNDS):
        outside: dict[tuple[int, ...], list[int]] = {}
        for i in sorted(
            set(range(len(weights))) - inside, key=lambda i: (stake(i), i == 0, rank[i])
        ):
            outside.setdefault(klass(i), []).append(i)
        outside_stakes = {c: [stake(i) for i in members] for c, members in outside.items()}
        leaving: dict[tuple[tuple[int, ...], int], int] = {}
        for i in sorted(inside, key=lambda i: (i != 0, -rank[i])):
            leaving.setdefault((klass(i), stake(i)), i)  # one per (class, stake); 0 first
        if stake_dim is not None:
            win, have = windows[stake_dim], sums[stake_dim]
            wanted = {win.low - have, win.high - have}
            if win.target is not None:
                wanted.add(round(win.target - have))
        else:
            wanted = {0}
        moves: list[tuple[int | None, int | None]] = [(i, None) for i in leaving.values()]
        for c, members in outside.items():
            for delta in wanted:
                moves += [(None, j) for j in _nearest(outside_stakes[c], members, delta)]
                for i in leaving.values():
                    near = _nearest(outside_stakes[c], members, stake(i) + delta)
                    moves += [(i, j) for j in near]
        best: tuple[_Score, tuple[int | None, int | None], list[int]] | None = None
        for out_id, in_id in moves:
            new = list(sums)
            for k in range(len(new)):
                if out_id is not None:
                    new[k] -= weights[out_id][k]
                if in_id is not None:
                    new[k] += weights[in_id][k]
            after = {i for i in inside if i != out_id}
            if in_id is not None:
                after.add(in_id)
            score = _score(new, windows, sorted(after))
            if best is None or score < best[0]:
                best = (score, (out_id, in_id), new)
        if best is None or best[0] >= current:
            break
        current, (out_id, in_id), sums = best
        if out_id is not None:
            inside.discard(out_id)
        if in_id is not None:
            inside.add(in_id)
    return tuple(sorted(inside))


def _nearest(stakes: Sequence[int], members: Sequence[int], value: int) -> list[int]:
    """Members (sorted by stake, preferred first among equals) with the stake just below and
    just at-or-above ``value``; for each, the preferred member of its equal-stake run."""
    found: list[int] = []
    above = bisect.bisect_left(stakes, value)
    if above < len(stakes):
        found.append(members[above])
    if above > 0:
        found.append(members[bisect.bisect_left(stakes, stakes[above - 1])])
    return found


def _weights(entry: StakeEntry, windows: Sequence[Window]) -> tuple[int, ...]:
    return tuple(
        (1 if entry.authority else 0) if win.measure == AUTHORITIES else entry.stake
        for win in windows
    )


def _complement_windows(windows: Sequence[Window]) -> tuple[Window, ...]:
    return tuple(
        Window(
            w.measure,
            w.total,
            w.total - w.high,
            w.total - w.low,
            None if w.target is None else w.total - w.target,
        )
        for w in windows
    )


def _fill(
    order: Sequence[int],
    weights: Sequence[tuple[int, ...]],
    windows: Sequence[Window],
    *,
    strict: bool,
) -> list[int]:
    """Walk ``order`` and take each validator that keeps every measure <= its window's high
    and brings the set closer to the targets (``strict``) or not further (``not strict``)."""
    sums = [0] * len(windows)
    taken: list[int] = []
    for i in order:
        new = [s + w for s, w in zip(sums, weights[i], strict=True)]
        if any(n > win.high for n, win in zip(new, windows, strict=True)):
            continue
        before, after = _distance(sums, windows), _distance(new, windows)
        if after < before or (not strict and after <= before):
            sums = new
            taken.append(i)
    return taken


def _sums(ids: Sequence[int], weights: Sequence[tuple[int, ...]], size: int) -> list[int]:
    sums = [0] * size
    for i in ids:
        sums = [s + w for s, w in zip(sums, weights[i], strict=True)]
    return sums


def _distance(sums: Sequence[int], windows: Sequence[Window]) -> float:
    return sum(
        abs(s - w.target) / w.total
        for s, w in zip(sums, windows, strict=True)
        if w.target is not None and w.total
    )


def _violation(sums: Sequence[int], windows: Sequence[Window]) -> float:
    total = 0.0
    for s, w in zip(sums, windows, strict=True):
        if w.low > w.high:
            total += 1.0
        elif s < w.low:
            total += (w.low - s) / max(w.total, 1)
        elif s > w.high:
            total += (s - w.high) / max(w.total, 1)
    return total


def _zero_last(order: Sequence[int]) -> list[int]:
    return [i for i in order if i != 0] + ([0] if 0 in order else [])


def _seeded_rank(size: int, seed: int) -> list[int]:
    return [_hash_int("aitbc-target", seed, i) for i in range(size)]


def _unreachable_message(
    label: str,
    mode: str,
    table: Sequence[StakeEntry],
    windows: Sequence[Window],
    closest: Sequence[int],
) -> str:
    needs = "; ".join(
        f"{w.measure} between {w.low} and {w.high} of {w.total}"
        if w.low <= w.high
        else f"{w.measure}: no integer between {w.low} and {w.high} of {w.total}"
        for w in windows
    )
    authorities = sum(1 for entry in table if entry.authority)
    message = (
        f"no set of validators is {label} of the voting power in {mode} mode with "
        f"{len(table)} validators and {authorities} authorities (needs {needs})"
    )
    if closest:
        got = power_fractions(table, closest)
        shown = ", ".join(str(i) for i in closest[:12]) + (", ..." if len(closest) > 12 else "")
        message += (
            f"; closest found: {len(closest)} validators [{shown}] with "
            f"{got.authorities:.1%} of authorities and {got.stake:.1%} of stake"
        )
    return message + "; use explicit ids or {count: N}, or change the validator set"
