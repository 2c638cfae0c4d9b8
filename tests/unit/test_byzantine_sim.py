"""Every byzantine behaviour under the simulator (the runtime's own ``Attacker``): it acts, honest
nodes refuse what it sends for the expected reason (or the ledger punishes it), honest senders
are never refused for a hostile reason, and the chain stays safe and live. Plus the pieces the
behaviours lean on: batch verification, the batch quota, ``auto`` mode's participation figure,
and ``aitbc-node sim --byzantine``.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from aitbc_node.batch import Batch, VerifiedBatch, verify_batch
from aitbc_node.byzantine import BEHAVIOURS, CATALOGUE, BehaviourError, parse_behaviour
from aitbc_node.chain import ParticipationTally, first_epoch
from aitbc_node.cli import main
from aitbc_node.consensus.leader import select_leader
from aitbc_node.consensus.reasons import Reason
from aitbc_node.crypto import ModeledScheme, testnet_account_keypair
from aitbc_node.genesis import REWARD_ACCOUNT_OFFSET, make_testnet_genesis
from aitbc_node.ledger import SLASH_DIVISOR, LedgerState, sign_transfer
from aitbc_node.replica import MAX_PENDING_BATCHES_PER_AUTHOR, BatchAdmission, Replica
from aitbc_node.sim import ByzantineSpec, SimConfig, SimResult, Simulator
from aitbc_node.sim.attacks import HONEST

ATTACKER = 2
#: A validator that never proposes, so rounds time out and TCs form (what the fallback-leader
#: behaviours need to act on).
SILENT = 4
#: What honest nodes refuse from each behaviour (any one of them); None: nothing is refused,
#: the attack shows elsewhere (evidence and slashing, timeouts).
REFUSED: dict[str, set[str] | None] = {
    "equivocate": None,
    "silent-leader": None,
    "withhold-votes": None,
    "selective-proposal": None,
    "stale-fallback-qc": {Reason.STALE_JUSTIFY},
    "tc-high-qc-swap": {Reason.TC_HIGH_QC_MISMATCH},
    "tamper-certificate": {Reason.QC_BAD_SIGNATURE, Reason.QC_BAD_SIGNERS},
    "timestamp-skew": {Reason.TIMESTAMP_IN_FUTURE},
    "invalid-batch": {Reason.INVALID_BATCH},
    "replay": {Reason.STALE_MESSAGE, Reason.MISDIRECTED_VOTE},
    "wrong-chain": {
        Reason.BAD_VOTE_SIGNATURE,
        Reason.BAD_TIMEOUT_SIGNATURE,
        Reason.BAD_PROPOSAL_SIGNATURE,
    },
    "flood": {Reason.ROUND_TOO_FAR_AHEAD, Reason.OVERSIZED_MESSAGE},
    "unstake-escape": None,
    "registration-flood": {Reason.REGISTRATION_REFUSED},
}


def run(behaviour: str, *, blocks: int = 40, seed: int = 3) -> tuple[Simulator, SimResult]:
    specs = [ByzantineSpec((ATTACKER,), behaviour)]
    if behaviour in ("stale-fallback-qc", "tc-high-qc-swap"):
        specs.append(ByzantineSpec((SILENT,), "silent-leader"))
    sim = Simulator(
        SimConfig(
            validators=10,
            authorities=10,
            blocks=blocks,
            seed=seed,
            crypto="modeled",
            epoch_length=10,
            block_interval_ms=100,
            byzantine=tuple(specs),
            max_simulated_s=120,
        )
    )
    return sim, sim.run()


def test_the_catalogue_and_the_table_agree() -> None:
    assert set(REFUSED) == set(BEHAVIOURS) == set(CATALOGUE)


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_each_behaviour_acts_is_refused_and_the_chain_stays_safe_and_live(behaviour: str) -> None:
    sim, result = run(behaviour)
    report = result.byzantine
    assert result.safety_violations == 0
    assert result.committed_height >= 40, report
    assert report["actions"].get(behaviour, 0) > 0, report
    assert report["unverified_txs_executed"] == 0
    honest = set(sim.attacks.rejected_by_behaviour.get(HONEST, {}))
    assert honest <= {Reason.STALE_MESSAGE}, report
    expected = REFUSED[behaviour]
    if expected is not None:
        refused = set(report["rejected_by_behaviour"].get(behaviour, {}))
        assert refused & expected, (behaviour, report)
    if behaviour in ("equivocate", "unstake-escape"):
        assert ATTACKER in result.slashed_validators
        epochs = [epoch for offender, epoch in report["slash_events"] if offender == ATTACKER]
        assert len(epochs) == len(set(epochs)) > 0  # once per epoch


def test_unstaking_before_the_evidence_commits_still_costs_a_tenth() -> None:
    sim, _ = run("unstake-escape", blocks=30)
    honest = next(n for n in sim.nodes if not n.byzantine)
    ledger = honest.replica.ledger
    genesis_stake = sim.genesis.validators[ATTACKER].stake
    record = ledger.validator(ATTACKER)
    unbonding = sum(u.amount for u in ledger.unbonding() if u.validator == ATTACKER)
    released = ledger.account(sim.attacks.attackers[ATTACKER].account.public).balance
    slashes = len([e for e in ledger.slash_events() if e[0] == ATTACKER])
    assert slashes >= 1
    # Bonded + unbonding + released stake: what the slashings left, not the whole stake.
    left = record.stake + unbonding
    assert left <= genesis_stake - genesis_stake // SLASH_DIVISOR
    assert released >= 0


def test_a_registration_flood_is_refused_by_the_ledger_and_grows_nothing() -> None:
    sim, _ = run("registration-flood", blocks=30)
    honest = next(n for n in sim.nodes if not n.byzantine)
    assert len(honest.replica.ledger.validator_records()) == 10  # no tiny validator joined
    refused = sim.attacks.rejected_by_behaviour["registration-flood"]
    assert refused[Reason.REGISTRATION_REFUSED] > 0


# --------------------------------------------------------------------------- the pieces


def test_verify_batch_admits_only_signed_transactions_and_real_load() -> None:
    keys = testnet_account_keypair("batch-test", 0)
    good = sign_transfer(keys, "aitbc-unit", keys.public, 1, 0)
    bad = replace(good, signature=bytes([good.signature[0] ^ 1]) + good.signature[1:])
    assert verify_batch(Batch(0, 1, (good.encode(),))) is not None
    assert verify_batch(Batch(0, 2, (good.encode(), bad.encode()))) is None
    assert verify_batch(Batch(0, 3, (b"not a transaction",))) is None
    assert verify_batch(Batch(0, 4, (), synthetic_count=5)) is None
    assert verify_batch(Batch(0, 4, (), synthetic_count=5), allow_synthetic=True) is not None


def test_an_author_holds_a_bounded_number_of_uncommitted_batches() -> None:
    scheme = ModeledScheme()
    genesis = make_testnet_genesis(validators=4, authorities=4, seed="quota", scheme=scheme)
    ledger = LedgerState.from_genesis(genesis, scheme)
    replica = Replica(ledger, first_epoch(genesis, ledger.validator_records()), "balanced")
    for k in range(MAX_PENDING_BATCHES_PER_AUTHOR):
        batch = VerifiedBatch.local(Batch(1, k, (), synthetic_count=1))
        assert replica.add_batch(batch) is BatchAdmission.ADDED
    extra = VerifiedBatch.local(Batch(1, 10**6, (), synthetic_count=1))
    assert replica.add_batch(extra) is BatchAdmission.AUTHOR_FULL
    other = VerifiedBatch.local(Batch(2, 0, (), synthetic_count=1))
    assert replica.add_batch(other) is BatchAdmission.ADDED


def test_participation_counts_the_rounds_authorities_lead_not_qc_signers() -> None:
    scheme = ModeledScheme()
    genesis = make_testnet_genesis(
        validators=7, authorities=4, seed="participation", scheme=scheme, mode="auto"
    )
    ledger = LedgerState.from_genesis(genesis, scheme)
    es = first_epoch(genesis, ledger.validator_records())
    primary = [select_leader(es.validators, es.mode, es.seed, 1, r) for r in range(1, 41)]
    authority_rounds = [r for r, p in enumerate(primary, 1) if p in es.validators.authority_set]
    assert authority_rounds
    sim_block = Simulator(SimConfig(validators=4, authorities=4, crypto="modeled")).root

    def tally_with(kept: list[int]) -> float:
        tally = ParticipationTally(es)
        for round_ in kept:
            block = replace(sim_block, epoch=1, round=round_, proposer=primary[round_ - 1])
            tally.record(block)
        return tally.share(40)

    assert tally_with(authority_rounds) == 1.0
    half = authority_rounds[::2]
    assert tally_with(half) == pytest.approx(len(half) / len(authority_rounds))


def test_auto_mode_stays_balanced_when_every_authority_takes_part() -> None:
    """Before: participation counted QC signers, capped by the quorum a leader aggregates at
    (about two thirds), so a healthy network always moved to SECURE."""
    result = Simulator(
        SimConfig(
            validators=10,
            authorities=7,
            mode="auto",
            blocks=45,
            seed=5,
            crypto="modeled",
            epoch_length=10,
            load_tps=50.0,
        )
    ).run()
    assert result.final_epoch >= 4
    assert result.mode == "balanced"


def test_behaviour_params_are_checked_and_named() -> None:
    assert parse_behaviour("flood", {"count": 5}).params == {
        "count": 5,
        "interval_ms": 200,
        "oversized": True,
    }
    with pytest.raises(
        BehaviourError, match=r"field behaviour: 'nope' is no behaviour: use one of"
    ):
        parse_behaviour("nope", {})
    with pytest.raises(BehaviourError, match=r"field params\.speed: flood takes no such"):
        parse_behaviour("flood", {"speed": 1}, "params.")
    with pytest.raises(BehaviourError, match=r"field count"):
        parse_behaviour("flood", {"count": 0})


def test_cli_runs_byzantine_behaviours_and_reports_them(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "sim",
        "--validators",
        "7",
        "--authorities",
        "7",
        "--blocks",
        "20",
        "--crypto",
        "modeled",
        "--epoch-length",
        "10",
        "--byzantine",
        "2:tamper-certificate",
        "--byzantine",
        "3:flood@count=5,oversized=false:1:4",
        "--clock-skew-ms",
        "2000",
        "--json",
    ]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    byzantine = report["byzantine"]
    assert byzantine["validators"] == {"2": ["tamper-certificate"], "3": ["flood"]}
    assert byzantine["actions"]["tamper-certificate"] > 0
    assert byzantine["actions"]["flood"] > 0
    assert "oversized_message" not in byzantine["rejected_by_behaviour"].get("flood", {})
    assert report["safety_violations"] == 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("2", "expected IDS:BEHAVIOUR"),
        ("x:flood", "IDS, START and END are numbers"),
        ("2:nope", "use one of"),
        ("2:flood@count", "is not KEY=VALUE"),
        ("2:flood@count=0", "count"),
        ("9:flood", "ids must be validators"),
    ],
)
def test_bad_byzantine_flags_exit_2_naming_the_flag(
    spec: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sim", "--validators", "7", "--authorities", "7", "--byzantine", spec]
    with pytest.raises(SystemExit) as exited:
        code = main(argv)
        raise SystemExit(code)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_the_attacker_account_is_the_validator_reward_account() -> None:
    sim, _ = run("invalid-batch", blocks=12)
    account = sim.attacks.attackers[ATTACKER].account
    seed = f"sim-{sim.config.seed}"
    assert account == testnet_account_keypair(seed, REWARD_ACCOUNT_OFFSET + ATTACKER)
