"""The ledger state of one node: accounts, the validator registry, rewards and slashing.

Every honest node applies the same committed blocks in the same order and gets the same state:
``apply_block`` never raises on a bad transaction (it skips it with a reason), uses integer
arithmetic only, and iterates in index or byte order.

Supply identity (tested): ``total_supply() == genesis_supply + minted_total - burned_total``.
Transfers, fees, stakes and unstakes only move value between balances and stakes; each block
mints ``block_reward`` (paid to reward addresses) and slashing burns the slashed stake.

Validator lifecycle. A validator's index is its registry position and never changes (a
registration gets the next index), and record lists always hold every registered validator,
indices 0..M-1 with no gaps: membership of an epoch's set is the ``active`` flag, so a validator
that leaves keeps its slot (the consensus gives it no weight). The first epoch's set is every
genesis validator. At ``advance_epoch`` the next set is: not slashed and (stake > 0 or
authority), plus the validators registered during the ending epoch, capped at
``max_validators`` (authorities first, then the largest stakes, then the lowest index). A slashed
validator stays active (and in the set) until then; ``slashed`` is permanent. Only active,
unslashed validators earn rewards. Only a validator's reward address may STAKE or UNSTAKE for
it. A registration needs ``min_stake`` and pays at least ``min_registration_fee``, and the
registry holds at most ``MAX_REGISTERED_VALIDATORS`` (signer bitmaps stay within their limit).

Unbonding and slashing. An epoch's voting power is the stake at its start, and evidence of an
offence in epoch e commits at the latest in e + 1. UNSTAKE therefore moves the amount into an
unbonding entry released to the reward address at the start of epoch (now +
``unbonding_epochs``), and a slashing takes 10 % of the offender's bonded stake and of each of
its unbonding entries: unstaking before the evidence commits escapes nothing. An offender is
slashed once per epoch, however many rounds it equivocated in.

Signatures are not checked here: only verified batches reach the replica that executes blocks
(``aitbc_node.batch``), and the mempool verifies submissions (``verify_transaction_signature``).

Rewards are accrued lazily: the per-validator payouts of a block only change when a validator
does, so ``apply_block`` counts blocks and credits ``payout x blocks`` to the reward addresses
when one of them is read or spent, when a validator changes, or when the state is hashed or
saved. Every observable value equals eager payment, at O(1) per block instead of O(validators)
(the simulator runs 1,000 ledgers of 1,000 validators).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from aitbc_node.crypto.hashing import tagged_hash
from aitbc_node.crypto.registry import scheme_by_name
from aitbc_node.crypto.scheme import SignatureScheme
from aitbc_node.errors import LedgerError
from aitbc_node.genesis import MAX_REGISTERED_VALIDATORS, Genesis, LedgerParams
from aitbc_node.ledger.account_root import AccountRoot
from aitbc_node.ledger.records import Account, BlockReceipt, Unbonding, ValidatorRecord
from aitbc_node.ledger.snapshot import (
    LedgerContents,
    decode_snapshot,
    encode_indices,
    encode_slash_events,
    encode_snapshot,
    encode_unbonding,
    encode_validator,
)
from aitbc_node.ledger.tx import Transaction, TxKind

#: How far ahead of an account's next nonce the mempool accepts a transaction.
NONCE_WINDOW = 1024
#: Share of the block reward paid equally to authorities, in percent (the rest by stake).
AUTHORITY_REWARD_PERCENT = 60
#: Fraction of its stake an offender loses per slashed (epoch, round): 1 / SLASH_DIVISOR.
SLASH_DIVISOR = 10

#: Every reason ``check_transaction`` and ``apply_block`` give, plus the signature failure the
#: runtime reports; the label values of ``aitbc_txs_rejected_total{reason}``.
REJECT_REASONS: tuple[str, ...] = (
    "wrong_chain",
    "stale_nonce",
    "nonce_gap",
    "insufficient_balance",
    "unknown_validator",
    "bad_pop",
    "invalid_amount",
    "not_validator_owner",
    "insufficient_stake",
    "validator_slashed",
    "duplicate_validator",
    "stake_below_minimum",
    "fee_too_low",
    "registry_full",
    "bad_signature",
)
#: The reasons a registration within a valid, signed transaction is refused for its size or
#: the registry's: what a registration flood runs into.
REGISTRATION_LIMIT_REASONS = frozenset({"stake_below_minimum", "fee_too_low", "registry_full"})

_POP_CACHE_SIZE = 4096


_genesis_records_cache: list[tuple[Genesis, tuple[ValidatorRecord, ...]]] = []


def _genesis_validator_records(genesis: Genesis) -> tuple[ValidatorRecord, ...]:
    """The genesis validators as records, parsed once per genesis object (a simulator builds
    one ledger per simulated node from the same genesis; records are immutable, so shared)."""
    for cached_genesis, records in _genesis_records_cache:
        if cached_genesis is genesis:
            return records
    records = tuple(
        ValidatorRecord(
            index=validator.index,
            bls_public_key=validator.bls_public_key_bytes,
            stake=validator.stake,
            authority=validator.authority,
            reward_address=validator.reward_address_bytes,
            active=True,
            slashed=False,
        )
        for validator in genesis.validators
    )
    _genesis_records_cache[:] = [(genesis, records)]
    return records


@dataclass(frozen=True)
class _RewardPlan:
    """The block reward split while no validator changes: per-validator payouts (by index),
    what is left for the proposer, and the reward addresses that receive a payout."""

    payouts: tuple[tuple[int, int], ...]  # (validator index, amount), by index
    proposer_remainder: int
    credits: tuple[tuple[bytes, int], ...]
    payees: frozenset[bytes]
    position: dict[int, int]


class LedgerState:
    """Mutable ledger state owned by one node (not thread-safe)."""

    def __init__(
        self,
        *,
        chain_id: str,
        params: LedgerParams,
        scheme: SignatureScheme,
        accounts: dict[bytes, Account],
        validators: list[ValidatorRecord],
        registered_this_epoch: Iterable[int] = (),
        slash_events: Iterable[tuple[int, int]] = (),
        unbonding: Iterable[Unbonding] = (),
        epoch: int = 1,
        minted_total: int = 0,
        burned_total: int = 0,
        genesis_supply: int | None = None,
    ) -> None:
        for position, record in enumerate(validators):
            if record.index != position:
                raise LedgerError(
                    f"validator record {position} has index {record.index}: the registry must "
                    "hold indices 0..M-1 in order"
                )
        self.chain_id = chain_id
        self.params = params
        self.scheme = scheme
        self._accounts = accounts
        self._validators = validators
        self._by_bls_key = {record.bls_public_key: record.index for record in validators}
        self._registered_this_epoch = list(registered_this_epoch)
        self._slash_events = set(slash_events)
        self._unbonding = list(unbonding)
        self.epoch = epoch
        self.minted_total = minted_total
        self.burned_total = burned_total
        self._pop_results: dict[tuple[bytes, bytes], bool] = {}
        self._account_root = AccountRoot(accounts)
        self._validators_digest: bytes | None = None
        self._reward_plan: _RewardPlan | None = None
        self._accrued_blocks = 0  # blocks whose plan payouts are not yet credited
        self.genesis_supply = self.total_supply() if genesis_supply is None else genesis_supply

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_genesis(cls, genesis: Genesis, scheme: SignatureScheme | None = None) -> LedgerState:
        """The state at genesis. ``scheme`` checks registration PoPs (default: the BLS scheme;
        a simulator with modeled keys passes its modeled scheme)."""
        accounts = {
            account.address_bytes: Account(balance=account.balance, nonce=0)
            for account in genesis.accounts
        }
        validators = list(_genesis_validator_records(genesis))
        return cls(
            chain_id=genesis.chain_id,
            params=genesis.ledger,
            scheme=scheme if scheme is not None else scheme_by_name("real"),
            accounts=accounts,
            validators=validators,
        )

    # -- queries -----------------------------------------------------------------------------
    def account(self, address: bytes) -> Account:
        """A copy of ``address``'s account (balance 0, nonce 0 when it does not exist yet)."""
        self._settle_for(address)
        found = self._accounts.get(address)
        return Account(balance=found.balance, nonce=found.nonce) if found else Account(0, 0)

    def validator(self, index: int) -> ValidatorRecord:
        if not 0 <= index < len(self._validators):
            raise LedgerError(
                f"validator {index} is not registered: indices are 0..{len(self._validators) - 1}"
            )
        return self._validators[index]

    def validator_records(self) -> tuple[ValidatorRecord, ...]:
        """Every registered validator, by index (0..M-1, no gaps); ``active`` marks the current
        epoch's set (validators registered during this epoch are inactive until the next)."""
        return tuple(self._validators)

    def _joins_next_epoch(self, record: ValidatorRecord, registered: set[int]) -> bool:
        if record.slashed:
            return False
        return record.stake > 0 or record.authority or record.index in registered

    def next_validator_records(self) -> tuple[ValidatorRecord, ...]:
        """What ``validator_records()`` will be after ``advance_epoch()``: ``active`` marks the
        next set (not slashed, and stake > 0 or authority or registered during this epoch),
        at most ``max_validators`` of them: authorities, then by stake, then by index."""
        registered = set(self._registered_this_epoch)
        candidates = [r for r in self._validators if self._joins_next_epoch(r, registered)]
        candidates.sort(key=lambda r: (not r.authority, -r.stake, r.index))
        chosen = {r.index for r in candidates[: self.params.max_validators]}
        return tuple(
            record
            if record.active == (record.index in chosen)
            else replace(record, active=not record.active)
            for record in self._validators
        )

    def unbonding(self) -> tuple[Unbonding, ...]:
        """Unstaked amounts not yet released, oldest first."""
        return tuple(self._unbonding)

    def active_indices(self) -> tuple[int, ...]:
        """Indices of the current epoch's set."""
        return tuple(record.index for record in self._validators if record.active)

    def advance_epoch(self) -> None:
        """Make the next epoch's set the current one and release the unbonding entries due."""
        records = self.next_validator_records()
        self._settle()
        self._validators[:] = records
        self._registered_this_epoch = []
        self._validators_changed()
        self.epoch += 1
        due = [entry for entry in self._unbonding if entry.release_epoch <= self.epoch]
        self._unbonding = [entry for entry in self._unbonding if entry.release_epoch > self.epoch]
        for entry in due:
            self._credit(entry.owner, entry.amount)

    def total_supply(self) -> int:
        """Sum of all balances, stakes and unbonding amounts."""
        self._settle()
        return (
            sum(account.balance for account in self._accounts.values())
            + sum(record.stake for record in self._validators)
            + sum(entry.amount for entry in self._unbonding)
        )

    @property
    def account_count(self) -> int:
        self._settle()
        return len(self._accounts)

    # -- admission ---------------------------------------------------------------------------
    def check_transaction(self, tx: Transaction) -> str | None:
        """Why the mempool must refuse ``tx`` against the current state, or None. Nonces may
        run up to ``NONCE_WINDOW`` ahead; signatures are checked separately."""
        if tx.chain_id != self.chain_id:
            return "wrong_chain"
        self._settle_for(tx.sender)
        account = self._accounts.get(tx.sender)
        balance, expected = (account.balance, account.nonce) if account else (0, 0)
        if tx.nonce < expected:
            return "stale_nonce"
        if tx.nonce > expected + NONCE_WINDOW:
            return "nonce_gap"
        return self._check_effect(tx, balance)

    def _check_effect(self, tx: Transaction, balance: int) -> str | None:
        kind = tx.kind
        if kind is TxKind.TRANSFER:
            cost = tx.amount + tx.fee
        elif kind is TxKind.REGISTER_VALIDATOR:
            if tx.amount < self.params.min_stake:
                return "stake_below_minimum"
            if tx.fee < self.params.min_registration_fee:
                return "fee_too_low"
            if len(self._validators) >= MAX_REGISTERED_VALIDATORS:
                return "registry_full"
            if tx.bls_public_key in self._by_bls_key:
                return "duplicate_validator"
            cost = tx.amount + tx.fee
        else:
            if not 0 <= tx.validator < len(self._validators):
                return "unknown_validator"
            record = self._validators[tx.validator]
            if tx.sender != record.reward_address:
                return "not_validator_owner"
            if tx.amount <= 0:
                return "invalid_amount"
            if kind is TxKind.STAKE:
                if record.slashed:
                    return "validator_slashed"
                cost = tx.amount + tx.fee
            else:
                if tx.amount > record.stake:
                    return "insufficient_stake"
                cost = tx.fee
        if cost > balance:
            return "insufficient_balance"
        if kind is TxKind.REGISTER_VALIDATOR and not self._pop_valid(tx.bls_public_key, tx.pop):
            return "bad_pop"
        return None

    def _pop_valid(self, public: bytes, proof: bytes) -> bool:
        key = (public, proof)
        result = self._pop_results.get(key)
        if result is None:
            result = self.scheme.pop_verify(public, proof)
            if len(self._pop_results) >= _POP_CACHE_SIZE:
                self._pop_results.clear()
            self._pop_results[key] = result
        return result

    # -- execution ---------------------------------------------------------------------------
    def apply_block(
        self,
        txs: Sequence[Transaction],
        proposer: int,
        evidence_offenders: Sequence[tuple[int, int, int]] = (),
    ) -> BlockReceipt:
        """Apply a committed block: its transactions in order (skipping those that fail, with a
        reason), then the block reward and fees, then slashing of ``evidence_offenders``
        ((validator index, epoch, round) each)."""
        if not 0 <= proposer < len(self._validators):
            raise LedgerError(
                f"block proposer {proposer} is not a registered validator "
                f"(0..{len(self._validators) - 1}): the consensus passed a wrong index"
            )
        applied: list[bytes] = []
        skipped: list[tuple[bytes, str]] = []
        fees = 0
        for tx in txs:
            reason = self._execute(tx)
            if reason is None:
                applied.append(tx.id)
                fees += tx.fee
            else:
                skipped.append((tx.id, reason))
        rewards = self._pay_rewards(proposer, fees)
        slashed, burned = self._slash(evidence_offenders)
        return BlockReceipt(
            applied=tuple(applied),
            skipped=tuple(skipped),
            rewards=rewards,
            slashed=slashed,
            fees=fees,
            minted=self.params.block_reward,
            burned=burned,
        )

    def _execute(self, tx: Transaction) -> str | None:
        if tx.chain_id != self.chain_id:
            return "wrong_chain"
        sender = tx.sender
        self._settle_for(sender)
        account = self._accounts.get(sender)
        expected = account.nonce if account else 0
        if tx.nonce != expected:
            return "stale_nonce" if tx.nonce < expected else "nonce_gap"
        reason = self._check_effect(tx, account.balance if account else 0)
        if reason is not None:
            return reason
        if account is None:
            account = self._new_account(sender)
        account.nonce += 1
        kind = tx.kind
        if kind is TxKind.TRANSFER:
            account.balance -= tx.amount + tx.fee
            self._credit(tx.recipient, tx.amount)
        elif kind is TxKind.STAKE:
            account.balance -= tx.amount + tx.fee
            record = self._validators[tx.validator]
            self._set_validator(replace(record, stake=record.stake + tx.amount))
        elif kind is TxKind.UNSTAKE:
            account.balance -= tx.fee
            record = self._validators[tx.validator]
            self._set_validator(replace(record, stake=record.stake - tx.amount))
            release = self.epoch + self.params.unbonding_epochs
            self._unbonding.append(Unbonding(tx.validator, sender, tx.amount, release))
        else:
            account.balance -= tx.amount + tx.fee
            index = len(self._validators)
            self._settle()
            self._validators.append(
                ValidatorRecord(
                    index=index,
                    bls_public_key=tx.bls_public_key,
                    stake=tx.amount,
                    authority=False,
                    reward_address=sender,
                    active=False,
                    slashed=False,
                )
            )
            self._by_bls_key[tx.bls_public_key] = index
            self._registered_this_epoch.append(index)
            self._validators_changed()
        self._account_root.touch(sender)
        return None

    def _new_account(self, address: bytes) -> Account:
        account = Account(balance=0, nonce=0)
        self._accounts[address] = account
        self._account_root.add(address)
        return account

    def _credit(self, address: bytes, amount: int) -> None:
        account = self._accounts.get(address)
        if account is None:
            account = self._new_account(address)
        account.balance += amount
        self._account_root.touch(address)

    def _set_validator(self, record: ValidatorRecord) -> None:
        self._settle()  # pay what accrued under the old stakes first
        self._validators[record.index] = record
        self._validators_changed()

    def _validators_changed(self) -> None:
        self._validators_digest = None
        self._reward_plan = None

    # -- rewards -----------------------------------------------------------------------------
    def _plan_rewards(self) -> _RewardPlan:
        """The split of ``block_reward`` among the current set's active, unslashed validators:
        60 % equally among authorities, 40 % by stake (integer division; what is left goes to
        the proposer). Cached until a validator changes."""
        if self._reward_plan is not None:
            return self._reward_plan
        reward = self.params.block_reward
        authority_pool = reward * AUTHORITY_REWARD_PERCENT // 100
        stake_pool = reward - authority_pool
        eligible = [record for record in self._validators if record.active and not record.slashed]
        authorities = [record.index for record in eligible if record.authority]
        stakers = [(record.index, record.stake) for record in eligible if record.stake > 0]
        total_stake = sum(stake for _, stake in stakers)
        payouts: dict[int, int] = {}
        remainder = 0
        if authorities:
            share = authority_pool // len(authorities)
            for index in authorities:
                payouts[index] = share
            remainder += authority_pool - share * len(authorities)
        else:
            remainder += authority_pool
        if total_stake > 0:
            paid = 0
            for index, stake in stakers:
                amount = stake_pool * stake // total_stake
                payouts[index] = payouts.get(index, 0) + amount
                paid += amount
            remainder += stake_pool - paid
        else:
            remainder += stake_pool
        ordered = tuple(sorted(payouts.items()))
        credits = tuple(
            (self._validators[index].reward_address, amount) for index, amount in ordered if amount
        )
        self._reward_plan = _RewardPlan(
            payouts=ordered,
            proposer_remainder=remainder,
            credits=credits,
            payees=frozenset(address for address, _ in credits),
            position={index: position for position, (index, _) in enumerate(ordered)},
        )
        return self._reward_plan

    def _settle(self) -> None:
        """Credit the payouts accrued since the last settlement (under the cached plan)."""
        blocks, plan = self._accrued_blocks, self._reward_plan
        if blocks and plan is not None:  # accrual implies a plan: it is dropped only after this
            self._accrued_blocks = 0
            for address, amount in plan.credits:
                self._credit(address, amount * blocks)

    def _settle_for(self, address: bytes) -> None:
        if self._accrued_blocks and self._reward_plan and address in self._reward_plan.payees:
            self._settle()

    def _pay_rewards(self, proposer: int, fees: int) -> tuple[tuple[int, int], ...]:
        plan = self._plan_rewards()
        self._accrued_blocks += 1
        self.minted_total += self.params.block_reward
        bonus = plan.proposer_remainder + fees
        if bonus:
            self._credit(self._validators[proposer].reward_address, bonus)
        position = plan.position.get(proposer)
        if position is None:
            return tuple(sorted((*plan.payouts, (proposer, bonus)))) if bonus else plan.payouts
        payouts = list(plan.payouts)
        payouts[position] = (proposer, payouts[position][1] + bonus)
        return tuple(payouts)

    def _slash(self, offenders: Sequence[tuple[int, int, int]]) -> tuple[tuple[int, ...], int]:
        """Slash each (index, epoch, round) offender once per (index, epoch): a tenth of its
        bonded stake and of each of its unbonding entries is burned."""
        slashed: list[int] = []
        burned = 0
        for index, epoch, _round in offenders:
            event = (index, epoch)
            if event in self._slash_events or not 0 <= index < len(self._validators):
                continue
            self._slash_events.add(event)
            record = self._validators[index]
            penalty = record.stake // SLASH_DIVISOR
            self._set_validator(replace(record, stake=record.stake - penalty, slashed=True))
            for position, entry in enumerate(self._unbonding):
                if entry.validator == index:
                    cut = entry.amount // SLASH_DIVISOR
                    self._unbonding[position] = replace(entry, amount=entry.amount - cut)
                    penalty += cut
            burned += penalty
            slashed.append(index)
        self.burned_total += burned
        return tuple(slashed), burned

    def slash_events(self) -> tuple[tuple[int, int], ...]:
        """Every (validator, epoch) slashed, sorted."""
        return tuple(sorted(self._slash_events))

    # -- state root --------------------------------------------------------------------------
    def state_root(self) -> bytes:
        """A deterministic hash of the whole state: the accounts in address order (see
        ``account_root``: only what changed is rehashed), the validator registry, this
        epoch's registrations, slashing events and the minted/burned totals."""
        self._settle()
        accounts_root = self._account_root.root(self._accounts)
        if self._validators_digest is None:
            self._validators_digest = hashlib.sha256(
                b"".join(encode_validator(record) for record in self._validators)
            ).digest()
        return tagged_hash(
            b"AITBC/v1/state",
            self.chain_id.encode(),
            accounts_root,
            self._validators_digest,
            encode_indices(self._registered_this_epoch),
            encode_slash_events(self._slash_events),
            encode_unbonding(self._unbonding),
            self.epoch.to_bytes(8, "big"),
            self.minted_total.to_bytes(16, "big"),
            self.burned_total.to_bytes(16, "big"),
            self.genesis_supply.to_bytes(16, "big"),
        )

    # -- persistence -------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """The whole state as bytes (``restore`` reads them back), with a sha256 trailer."""
        self._settle()
        return encode_snapshot(
            LedgerContents(
                chain_id=self.chain_id,
                accounts=self._accounts,
                validators=self._validators,
                registered=self._registered_this_epoch,
                slash_events=sorted(self._slash_events),
                unbonding=self._unbonding,
                epoch=self.epoch,
                minted_total=self.minted_total,
                burned_total=self.burned_total,
                genesis_supply=self.genesis_supply,
            )
        )

    @classmethod
    def restore(
        cls, raw: bytes, genesis: Genesis, scheme: SignatureScheme | None = None
    ) -> LedgerState:
        """The state saved by ``snapshot``; raises ``DecodeError`` when the bytes are corrupt or
        belong to another chain than ``genesis``."""
        contents = decode_snapshot(raw, genesis.chain_id)
        return cls(
            chain_id=contents.chain_id,
            params=genesis.ledger,
            scheme=scheme if scheme is not None else scheme_by_name("real"),
            accounts=contents.accounts,
            validators=contents.validators,
            registered_this_epoch=contents.registered,
            slash_events=contents.slash_events,
            unbonding=contents.unbonding,
            epoch=contents.epoch,
            minted_total=contents.minted_total,
            burned_total=contents.burned_total,
            genesis_supply=contents.genesis_supply,
        )
