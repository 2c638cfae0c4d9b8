"""The genesis file: pydantic models shared by the node, the orchestrator and the Helm chart.

A genesis fixes the chain id, the consensus parameters, the ledger parameters, the initial
validators (with BLS public keys and proofs of possession) and the initial accounts.
``make_testnet_genesis`` derives all of it deterministically from a seed.

``key_seed`` (testnet only) records that seed so that any node or tool can re-derive every
validator's and test account's secret keys with ``aitbc_node.crypto.keys``. Anyone who reads
such a genesis can sign as any validator: never set it on a network whose keys must stay secret.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from aitbc_node.crypto.bls import BlsScheme
from aitbc_node.crypto.hashing import tagged_hash
from aitbc_node.crypto.keys import testnet_account_keypair, testnet_bls_keypair
from aitbc_node.crypto.scheme import SignatureScheme
from aitbc_node.errors import ConfigError, DecodeError

ModeName = Literal["fast", "balanced", "secure", "auto"]
#: Target block interval per mode (ms); "auto" starts in balanced.
MODE_BLOCK_INTERVAL_MS: dict[str, int] = {"fast": 100, "balanced": 500, "secure": 2000, "auto": 500}
#: Stake of each validator under the "equal" distribution (and the scale of the others).
EQUAL_STAKE = 1_000_000
#: Test account index offset of validator reward addresses.
REWARD_ACCOUNT_OFFSET = 1_000_000
CHAIN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def _hex_of_length(length: int, value: str) -> str:
    if len(value) != 2 * length:
        raise ValueError(f"expected {length} bytes as {2 * length} hex digits, got {len(value)}")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"not hex: {value[:20]!r}") from None
    return value.lower()


Hex32 = Annotated[str, AfterValidator(partial(_hex_of_length, 32))]
Hex48 = Annotated[str, AfterValidator(partial(_hex_of_length, 48))]
Hex96 = Annotated[str, AfterValidator(partial(_hex_of_length, 96))]

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class ConsensusGenesis(BaseModel):
    model_config = _FROZEN

    mode: ModeName = "balanced"
    epoch_length: int = Field(default=100, ge=10, description="blocks per epoch")
    checkpoint_interval: int = Field(default=50, ge=1, description="blocks between checkpoints")
    block_interval_ms: int | None = Field(default=None, ge=1, description="None: the mode's target")
    base_timeout_ms: int | None = Field(
        default=None, ge=1, description="None: the consensus core's default for the mode"
    )

    def effective_block_interval_ms(self) -> int:
        """``block_interval_ms`` or the mode's target (fast 100, balanced 500, secure 2000)."""
        if self.block_interval_ms is not None:
            return self.block_interval_ms
        return MODE_BLOCK_INTERVAL_MS[self.mode]


#: Most validators the registry holds (active or not): signer bitmaps of 256 bytes.
MAX_REGISTERED_VALIDATORS = 2048


class LedgerParams(BaseModel):
    model_config = _FROZEN

    block_reward: int = Field(default=1_000_000, ge=0, description="minted per block")
    min_stake: int = Field(
        default=10_000, ge=0, description="least initial stake of a registration"
    )
    min_registration_fee: int = Field(
        default=1_000, ge=0, description="least fee of a registration (a flood costs this each)"
    )
    max_validators: int = Field(
        default=1024,
        ge=1,
        le=MAX_REGISTERED_VALIDATORS // 2,
        description="active-set cap: authorities first, then the largest stakes",
    )
    unbonding_epochs: int = Field(
        default=2,
        ge=2,
        description=(
            "epochs unstaked funds stay slashable: evidence of epoch e commits by the end of "
            "e + 1, so at least 2"
        ),
    )


class GenesisValidator(BaseModel):
    model_config = _FROZEN

    index: int = Field(ge=0)
    name: str = Field(min_length=1, max_length=128)
    bls_public_key: Hex48
    pop: Hex96
    stake: int = Field(ge=0)
    authority: bool
    reward_address: Hex32

    @property
    def bls_public_key_bytes(self) -> bytes:
        return bytes.fromhex(self.bls_public_key)

    @property
    def pop_bytes(self) -> bytes:
        return bytes.fromhex(self.pop)

    @property
    def reward_address_bytes(self) -> bytes:
        return bytes.fromhex(self.reward_address)


class GenesisAccount(BaseModel):
    model_config = _FROZEN

    address: Hex32
    balance: int = Field(ge=0)

    @property
    def address_bytes(self) -> bytes:
        return bytes.fromhex(self.address)


class Genesis(BaseModel):
    model_config = _FROZEN

    chain_id: str = Field(pattern=CHAIN_ID_PATTERN)
    genesis_time: float = Field(default=0.0, ge=0, description="unix seconds")
    consensus: ConsensusGenesis = ConsensusGenesis()
    ledger: LedgerParams = LedgerParams()
    validators: list[GenesisValidator] = Field(min_length=1)
    accounts: list[GenesisAccount] = Field(default_factory=list)
    key_seed: str | None = Field(
        default=None, description="testnet only: anyone who knows it can derive every secret key"
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> Genesis:
        for position, validator in enumerate(self.validators):
            if validator.index != position:
                raise ValueError(
                    f"validators[{position}] has index {validator.index}: indices must be "
                    f"0..{len(self.validators) - 1}, contiguous and in order"
                )
        if not any(validator.authority for validator in self.validators):
            raise ValueError("no validator has authority: true; at least one authority is needed")
        if len(self.validators) > self.ledger.max_validators:
            raise ValueError(
                f"{len(self.validators)} validators but ledger.max_validators is "
                f"{self.ledger.max_validators}: raise it (at most "
                f"{MAX_REGISTERED_VALIDATORS // 2}) or list fewer validators"
            )
        seen_keys: dict[str, int] = {}
        for validator in self.validators:
            other = seen_keys.setdefault(validator.bls_public_key, validator.index)
            if other != validator.index:
                raise ValueError(
                    f"validators {other} and {validator.index} share a bls_public_key: "
                    "each validator needs its own key"
                )
        addresses: set[str] = set()
        for position, account in enumerate(self.accounts):
            if account.address in addresses:
                raise ValueError(f"accounts[{position}] repeats address {account.address}")
            addresses.add(account.address)
        return self

    def hash(self) -> bytes:
        """sha256 of the canonical JSON (sorted keys, no spaces, ASCII)."""
        canonical = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        )
        return hashlib.sha256(canonical.encode()).digest()

    @property
    def authority_count(self) -> int:
        return sum(1 for validator in self.validators if validator.authority)

    @property
    def total_stake(self) -> int:
        return sum(validator.stake for validator in self.validators)

    def verify_pops(self, scheme: SignatureScheme, max_workers: int | None = None) -> None:
        """Check every validator's proof of possession (about 1.6 ms each with BLS; blspy
        releases the GIL, so the real scheme uses a thread per core). Raises ``ConfigError``
        naming the first validator whose PoP does not verify."""
        publics = [validator.bls_public_key_bytes for validator in self.validators]
        proofs = [validator.pop_bytes for validator in self.validators]
        if max_workers is None:
            max_workers = (os.cpu_count() or 1) if scheme.name == "real" else 1
        if max_workers > 1 and len(publics) > 1:
            with ThreadPoolExecutor(max_workers=max_workers) as pool:
                results = list(pool.map(scheme.pop_verify, publics, proofs))
        else:
            results = [scheme.pop_verify(p, q) for p, q in zip(publics, proofs, strict=True)]
        for validator, valid in zip(self.validators, results, strict=True):
            if not valid:
                raise ConfigError(
                    f"genesis validator {validator.index} ({validator.name}): field pop does not "
                    f"verify for its bls_public_key under the {scheme.name!r} scheme: regenerate "
                    "the genesis with the scheme the nodes run"
                )


# -- testnet genesis -------------------------------------------------------------------------
def _stake_distribution(spec: str | Sequence[int], validators: int, seed: str) -> list[int]:
    if not isinstance(spec, str):
        stakes = list(spec)
        if len(stakes) != validators:
            raise ConfigError(
                f"stake list has {len(stakes)} entries for {validators} validators: give one "
                "stake per validator"
            )
        for index, stake in enumerate(stakes):
            if not isinstance(stake, int) or stake < 0:
                raise ConfigError(f"stake list entry {index} is {stake!r}: stakes are ints >= 0")
        return stakes
    if spec == "equal":
        return [EQUAL_STAKE] * validators
    if spec == "zipf":
        weights = [10**18 // (rank + 1) for rank in range(validators)]
        total = EQUAL_STAKE * validators
        weight_sum = sum(weights)
        return [max(1, total * weight // weight_sum) for weight in weights]
    match = re.fullmatch(r"uniform:(\d+):(\d+)", spec)
    if match:
        low, high = int(match.group(1)), int(match.group(2))
        if low > high:
            raise ConfigError(f"stake distribution {spec!r}: LO {low} is above HI {high}")
        span = high - low + 1
        return [
            low
            + int.from_bytes(
                tagged_hash(b"stake-uniform", seed.encode(), index.to_bytes(8, "big")), "big"
            )
            % span
            for index in range(validators)
        ]
    raise ConfigError(
        f"unknown stake distribution {spec!r}: use 'equal', 'zipf', 'uniform:LO:HI' or a list "
        "of ints"
    )


def make_testnet_genesis(
    *,
    validators: int,
    authorities: int,
    seed: str,
    mode: str = "balanced",
    stake: str | list[int] = "equal",
    accounts: int = 0,
    account_balance: int = 10**12,
    epoch_length: int = 100,
    scheme: SignatureScheme | None = None,
    chain_id: str | None = None,
    genesis_time: float | None = None,
) -> Genesis:
    """A deterministic testnet genesis: same arguments, same genesis.

    Validators 0..authorities-1 are authorities. Validator i's keys are
    ``testnet_bls_keypair(scheme, seed, i)`` (scheme defaults to BLS), its reward address is
    ``testnet_account_keypair(seed, 1_000_000 + i).public``; test account i is
    ``testnet_account_keypair(seed, i)`` with ``account_balance``. The default chain id is
    ``aitbc-testnet-<12 hex digits of the genesis hash>``; ``key_seed`` is set to ``seed``.
    """
    if validators < 1:
        raise ConfigError(f"validators is {validators}: a testnet needs at least 1 validator")
    if not 1 <= authorities <= validators:
        raise ConfigError(
            f"authorities is {authorities} with {validators} validators: use 1..{validators}"
        )
    if accounts < 0:
        raise ConfigError(f"accounts is {accounts}: use 0 or more test accounts")
    if account_balance < 0:
        raise ConfigError(f"account_balance is {account_balance}: use 0 or more")
    stakes = _stake_distribution(stake, validators, seed)
    signer = scheme if scheme is not None else BlsScheme()
    genesis_validators = []
    for index in range(validators):
        keypair = testnet_bls_keypair(signer, seed, index)
        genesis_validators.append(
            {
                "index": index,
                "name": f"validator-{index}",
                "bls_public_key": keypair.public.hex(),
                "pop": signer.pop_prove(keypair.secret).hex(),
                "stake": stakes[index],
                "authority": index < authorities,
                "reward_address": testnet_account_keypair(
                    seed, REWARD_ACCOUNT_OFFSET + index
                ).public.hex(),
            }
        )
    genesis_accounts = [
        {"address": testnet_account_keypair(seed, index).public.hex(), "balance": account_balance}
        for index in range(accounts)
    ]
    document = {
        "chain_id": chain_id if chain_id is not None else "aitbc-testnet",
        "genesis_time": 0.0 if genesis_time is None else genesis_time,
        "consensus": {"mode": mode, "epoch_length": epoch_length},
        "ledger": {},
        "validators": genesis_validators,
        "accounts": genesis_accounts,
        "key_seed": seed,
    }
    try:
        genesis = Genesis.model_validate(document)
    except ValidationError as error:
        raise ConfigError(f"testnet genesis: {_describe(error)}") from None
    if chain_id is None:
        genesis = genesis.model_copy(
            update={"chain_id": f"aitbc-testnet-{genesis.hash().hex()[:12]}"}
        )
    return genesis


# -- files -----------------------------------------------------------------------------------
def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "<root>"
        problems.append(f"field {location}: {item['msg']}")
    return "; ".join(problems)


def load_genesis(path: str | os.PathLike[str]) -> Genesis:
    """Read and validate a genesis JSON file. Raises ``ConfigError`` (unreadable, or a field is
    wrong: the message names the file and the field) or ``DecodeError`` (not JSON: names the
    file, line and column). PoPs are not checked here: call ``verify_pops``."""
    source = Path(path)
    try:
        text = source.read_text()
    except OSError as error:
        raise ConfigError(f"genesis file {source}: cannot read ({error.strerror})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DecodeError(
            f"genesis file {source}: not valid JSON at line {error.lineno} column "
            f"{error.colno}: {error.msg}"
        ) from None
    try:
        return Genesis.model_validate(document)
    except ValidationError as error:
        raise ConfigError(f"genesis file {source}: {_describe(error)}") from None


def write_genesis(genesis: Genesis, path: str | os.PathLike[str]) -> None:
    """Write ``genesis`` as indented JSON (atomically: temp file, then rename)."""
    target = Path(path)
    payload = json.dumps(genesis.model_dump(mode="json"), indent=2) + "\n"
    temporary = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        temporary.write_text(payload)
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ConfigError(
            f"genesis file {target}: cannot write ({error.strerror}): check the directory"
        ) from None
