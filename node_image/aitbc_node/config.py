"""The validator's config file (``node.yaml``): what the user wrote, and what the node will run.

``load_node_config(path)`` reads the YAML (ruamel.yaml's round-trip loader keeps the line of
every key, so errors point at it) into ``NodeConfig``, a pydantic model that forbids unknown
fields. ``NodeConfig.resolve(env)`` applies the environment (the validator index of a pod, data
dir, log level and admin token overrides), loads the genesis, derives the keys and checks them
against the genesis, and returns the frozen ``ResolvedNodeConfig`` the runtime starts from.

Example::

    chain_id: aitbc-devnet-1          # optional; must equal the genesis chain id when given
    genesis: /etc/aitbc/genesis.json  # relative paths resolve against this file's folder
    key: {seed: "devnet-seed", index: auto}   # or key_file: path (aitbc_node.crypto.keys)
    listen: {grpc: "127.0.0.1:7000", ops: "127.0.0.1:9100"}
    peers: [{index: 1, address: "127.0.0.1:7001"}]   # or {count: N, template: "host-{index}:7000"}
    data_dir: ./data/node-0
    era: "1"                          # a change wipes data_dir on the next start
    admin_token: "..."                # env AITBC_ADMIN_TOKEN wins; none: fault API answers 403
    log_level: info
    mempool: {max_txs: 200000, batch_max_txs: 500, batch_interval_ms: 20, max_submit_batch: 5000}
    byzantine: {behaviour: equivocate}   # optional: start as an attacker (a fault with no end;
                                         # behaviours and params: aitbc_node.byzantine)

Every problem raises ``ConfigError`` naming the file, the line, the field and what to do.
(Over 600 lines on purpose: the file's model, its line-numbered errors and its resolution all
read the same YAML tree and share one error wording; data eras sit here because the config's
``era`` decides them.)
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from aitbc_node.byzantine import BehaviourError, parse_behaviour
from aitbc_node.crypto.bls import BlsScheme
from aitbc_node.crypto.keys import (
    NodeKeys,
    load_key_file,
    testnet_account_keypair,
    testnet_bls_keypair,
)
from aitbc_node.crypto.scheme import SignatureScheme
from aitbc_node.errors import AitbcError, ConfigError, StorageError
from aitbc_node.genesis import CHAIN_ID_PATTERN, REWARD_ACCOUNT_OFFSET, Genesis, load_genesis
from aitbc_node.yaml_tree import key_lines, plain

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")

#: Environment variables the node reads (the container sets them; they win over the file).
ENV_VALIDATOR_INDEX = "AITBC_VALIDATOR_INDEX"
ENV_POD_INDEX = "AITBC_POD_INDEX"  # downward API: label apps.kubernetes.io/pod-index
ENV_POD_NAME = "POD_NAME"  # StatefulSet pod name: aitbc-validator-12 -> 12
ENV_DATA_DIR = "AITBC_DATA_DIR"
ENV_LOG_LEVEL = "AITBC_LOG_LEVEL"
ENV_ADMIN_TOKEN = "AITBC_ADMIN_TOKEN"

#: The file in data_dir that records the data's era (see ``era_check``).
ERA_MARKER = ".aitbc-era"
#: Entries of data_dir that an era wipe leaves alone (the marker, a volume's lost+found).
_KEPT_ON_WIPE = frozenset({ERA_MARKER, "lost+found"})

_HOST_PORT = re.compile(
    r"^(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]*)):(?P<port>\d{1,5})$"
)
_POD_ORDINAL = re.compile(r"-(\d+)$")
_ERA_PATTERN = r"^[A-Za-z0-9._-]{1,63}$"


# -- addresses ------------------------------------------------------------------------------
def split_host_port(address: str) -> tuple[str, int]:
    """``"127.0.0.1:7000"`` -> ``("127.0.0.1", 7000)``; ``"[::1]:7000"`` -> ``("::1", 7000)``.
    An empty host (``":9100"``) means every interface. Raises ``ValueError`` with the reason."""
    match = _HOST_PORT.match(address)
    if match is None:
        raise ValueError(
            f"address {address!r} is not HOST:PORT (e.g. 127.0.0.1:7000, [::1]:7000, "
            "host-{index}:7000)"
        )
    port = int(match.group("port"))
    if not 0 <= port <= 65535:
        raise ValueError(f"address {address!r}: port {port} is outside 0..65535")
    host = match.group("ipv6") if match.group("ipv6") is not None else match.group("host")
    return host, port


def _check_address(value: str) -> str:
    split_host_port(value)
    return value


# -- the file's model -----------------------------------------------------------------------
_STRICT = ConfigDict(extra="forbid")

#: ``HOST:PORT`` (checked by ``split_host_port``).
Address = Annotated[str, AfterValidator(_check_address)]


def _auto_or_index(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"index {value!r} is neither an int nor auto: use e.g. 0 or auto")
    if isinstance(value, str) and value != "auto":
        raise ValueError(f"index {value!r} is neither an int nor auto: use e.g. 0 or auto")
    if isinstance(value, int) and not 0 <= value < 2**32:
        raise ValueError(f"index {value} is out of range: use 0..{2**32 - 1} or auto")
    return value


class KeySpec(BaseModel):
    """Testnet identity: keys derived from ``seed`` (default: the genesis ``key_seed``) and
    ``index`` (an int, or ``auto``: from the environment, see ``resolve_index``)."""

    model_config = _STRICT

    seed: str | None = Field(default=None, min_length=1)
    index: Annotated[int | Literal["auto"], BeforeValidator(_auto_or_index)] = "auto"


class ListenSpec(BaseModel):
    model_config = _STRICT

    grpc: Address = "127.0.0.1:7000"
    ops: Address = "127.0.0.1:9100"


class PeerEntry(BaseModel):
    model_config = _STRICT

    index: int = Field(ge=0, lt=2**32)
    address: Address


class PeerTemplate(BaseModel):
    """Peers 0..count-1 at ``template`` with ``{index}`` replaced by each index."""

    model_config = _STRICT

    count: int = Field(ge=1, le=100_000)
    template: str

    @field_validator("template")
    @classmethod
    def _has_index(cls, value: str) -> str:
        if "{index}" not in value:
            raise ValueError(
                f"template {value!r} has no {{index}} placeholder: write e.g. "
                "'aitbc-validator-{index}.aitbc-validators:7000'"
            )
        _check_address(value.replace("{index}", "0"))
        return value


def _peers_form(value: object) -> str:
    return _PEERS_TEMPLATE if isinstance(value, Mapping) else _PEERS_LIST


_PEERS_LIST = "<list>"
_PEERS_TEMPLATE = "<template>"
#: ``[{index, address}, ...]`` or ``{count, template}`` (chosen by the YAML's shape).
PeersSpec = Annotated[
    Annotated[list[PeerEntry], Tag(_PEERS_LIST)] | Annotated[PeerTemplate, Tag(_PEERS_TEMPLATE)],
    Discriminator(_peers_form),
]


class MempoolSpec(BaseModel):
    model_config = _STRICT

    max_txs: int = Field(default=200_000, ge=1, description="transactions held at most")
    batch_max_txs: int = Field(default=500, ge=1, description="transactions per batch at most")
    batch_interval_ms: int = Field(default=20, ge=1, description="longest wait to fill a batch")
    max_submit_batch: int = Field(default=5_000, ge=1, description="transactions per Submit RPC")


class NodeConfig(BaseModel):
    """The config file as written (paths not yet resolved, environment not yet applied)."""

    model_config = _STRICT

    chain_id: str | None = Field(default=None, pattern=CHAIN_ID_PATTERN)
    genesis: str = Field(min_length=1)
    key: KeySpec | None = None
    key_file: str | None = Field(default=None, min_length=1)
    listen: ListenSpec = ListenSpec()
    peers: PeersSpec = Field(default_factory=list)
    data_dir: str = Field(min_length=1)
    era: str | None = Field(default=None, pattern=_ERA_PATTERN)
    admin_token: str | None = None
    log_level: LogLevel = "info"
    mempool: MempoolSpec = MempoolSpec()
    byzantine: dict[str, Any] | None = None

    # Where the file came from: set by parse_node_config, never by the file itself.
    _source: str = PrivateAttr(default="<string>")
    _base_dir: Path = PrivateAttr(default_factory=Path)
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)

    @field_validator("era", mode="before")
    @classmethod
    def _era_as_text(cls, value: object) -> object:
        # era: 0 in YAML (and in the Helm chart's values) is the same era as "0".
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @property
    def source(self) -> str:
        """The file this config came from (``"<string>"`` when parsed from text)."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """The folder relative paths resolve against (the config file's)."""
        return self._base_dir

    def resolve(
        self, env: Mapping[str, str] | None = None, scheme: SignatureScheme | None = None
    ) -> ResolvedNodeConfig:
        """Apply ``env`` (default ``os.environ``), load the genesis and derive and check the keys
        (``scheme`` defaults to BLS).

        Raises ``ConfigError`` naming the file, field and line (or the environment variable)."""
        environment: Mapping[str, str] = os.environ if env is None else env
        return _resolve(self, environment, scheme if scheme is not None else BlsScheme())

    def where(self, field: str) -> str:
        """``"config file node.yaml:7: field key.index"`` (with the line when known)."""
        line = None
        parts = field.split(".")
        for end in range(len(parts), 0, -1):
            line = self._lines.get(".".join(parts[:end]))
            if line is not None:
                break
        at = f"{self._source}:{line}" if line is not None else self._source
        return f"config file {at}: field {field}"

    def path_of(self, value: str) -> Path:
        """``value`` as a path; relative ones resolve against the config file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self._base_dir / path


# -- the resolved config --------------------------------------------------------------------
@dataclass(frozen=True)
class MempoolSettings:
    max_txs: int
    batch_max_txs: int
    batch_interval_ms: int
    max_submit_batch: int


@dataclass(frozen=True)
class ResolvedNodeConfig:
    """What one validator runs with: every path absolute, the environment applied, the genesis
    loaded and the keys checked against it."""

    source: Path | None
    index: int
    chain_id: str
    genesis: Genesis
    genesis_path: Path
    keys: NodeKeys
    grpc_listen: str
    ops_listen: str
    #: Every other validator's gRPC address by index (this node excluded).
    peers: dict[int, str]
    data_dir: Path
    era: str | None
    admin_token: str | None
    log_level: str
    mempool: MempoolSettings
    #: A byzantine behaviour to start with: ``{"behaviour": NAME, <params>}`` (None: honest).
    byzantine: dict[str, Any] | None = None

    @property
    def ops_host_port(self) -> tuple[str, int]:
        return split_host_port(self.ops_listen)

    @property
    def grpc_host_port(self) -> tuple[str, int]:
        return split_host_port(self.grpc_listen)

    def __repr__(self) -> str:  # never print the admin token into logs
        return (
            f"ResolvedNodeConfig(index={self.index}, chain_id={self.chain_id!r}, "
            f"grpc={self.grpc_listen}, ops={self.ops_listen}, peers={len(self.peers)}, "
            f"data_dir={str(self.data_dir)!r}, era={self.era!r}, log_level={self.log_level})"
        )


# -- loading --------------------------------------------------------------------------------
def load_node_config(
    path: str | os.PathLike[str], env: Mapping[str, str] = os.environ
) -> NodeConfig:
    """Read and validate a config file (relative paths in it resolve against its folder).

    ``env`` is not read here: the environment applies in ``NodeConfig.resolve(env)``; it is
    accepted so callers can pass the same mapping to both. Raises ``ConfigError`` naming the
    file, line and field."""
    del env
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {source}: does not exist: pass the node.yaml that `aitbc-node "
            "genesis` wrote (or the chart mounted) with --config"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ConfigError(f"config file {source}: cannot read ({reason})") from None
    return parse_node_config(text, source=str(source), base_dir=source.absolute().parent)


def parse_node_config(
    text: str, *, source: str = "<string>", base_dir: str | os.PathLike[str] = "."
) -> NodeConfig:
    """Validate config YAML given as text; relative paths resolve against ``base_dir``."""
    tree = _read_yaml(text, source)
    lines = key_lines(tree)
    try:
        config = NodeConfig.model_validate(plain(tree))
    except ValidationError as error:
        problems = [_problem(detail, source, lines) for detail in error.errors()]
        raise ConfigError("; ".join(dict.fromkeys(problems))) from None
    config._source = source
    config._base_dir = Path(base_dir).absolute()
    config._lines = {".".join(str(part) for part in loc): line for loc, line in lines.items()}
    if config.key is None and config.key_file is None:
        raise ConfigError(
            f"config file {source}: neither key nor key_file is set: add "
            "`key: {seed: SEED, index: auto}` (testnet keys) or `key_file: PATH`"
        )
    if config.key is not None and config.key_file is not None:
        raise ConfigError(
            f"{config.where('key_file')}: key and key_file are both set: keep one of them"
        )
    if config.byzantine is not None:
        rest = {key: value for key, value in config.byzantine.items() if key != "behaviour"}
        try:
            parse_behaviour(config.byzantine.get("behaviour"), rest, "byzantine.")
        except BehaviourError as error:
            raise ConfigError(f"{config.where(error.field)}: {error.detail}") from None
    return config


def _read_yaml(text: str, source: str) -> CommentedMap:
    try:
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        at = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(
            f"config file {at}: YAML syntax error: {error.problem or 'invalid YAML'}"
        ) from None
    except YAMLError as error:
        raise ConfigError(f"config file {source}: YAML syntax error: {error}") from None
    if tree is None:
        raise ConfigError(
            f"config file {source}: is empty: it needs at least genesis, key and data_dir"
        )
    if not isinstance(tree, CommentedMap):
        raise ConfigError(
            f"config file {source}:1: must be a mapping (genesis:, key:, listen: ...), not a "
            f"{type(tree).__name__}"
        )
    return tree


def _problem(detail: ErrorDetails, source: str, lines: Mapping[tuple[str | int, ...], int]) -> str:
    # The peers union adds its tag to the location (peers.<list>.0.index) and KeySpec.index's
    # union its member (key.index.int): drop those so the field reads as written.
    loc = tuple(
        part
        for position, part in enumerate(detail["loc"])
        if part not in (_PEERS_LIST, _PEERS_TEMPLATE)
        and not (position == 2 and detail["loc"][:2] == ("key", "index"))
    )
    field = ".".join(str(part) for part in loc) or "<root>"
    line = None
    for end in range(len(loc), 0, -1):
        line = lines.get(loc[:end])
        if line is not None:
            break
    at = f"{source}:{line}" if line is not None else source
    kind = detail["type"]
    if kind == "extra_forbidden":
        message = f"unknown field {loc[-1]!r}: remove it or check its spelling"
    elif kind == "missing":
        message = "required field is missing: add it"
    elif loc == ("peers",):
        message = (
            "must be a list of {index, address} or a mapping {count, template} "
            f"(got {type(detail.get('input')).__name__})"
        )
    else:
        message = detail["msg"].removeprefix("Value error, ")
        value = detail.get("input")
        if isinstance(value, str | int | float | bool) and repr(value) not in message:
            message = f"{message} (got {value!r})"
    return f"config file {at}: field {field}: {message}"


# -- resolving ------------------------------------------------------------------------------
def resolve_index(config: NodeConfig, env: Mapping[str, str]) -> int:
    """``key.index``, or for ``auto``: ``AITBC_VALIDATOR_INDEX``, else ``AITBC_POD_INDEX``
    (the ``apps.kubernetes.io/pod-index`` label), else the numeric suffix of ``POD_NAME``."""
    assert config.key is not None
    if isinstance(config.key.index, int):
        return config.key.index
    for variable in (ENV_VALIDATOR_INDEX, ENV_POD_INDEX):
        text = env.get(variable, "").strip()
        if text:
            if not text.isdecimal():
                raise ConfigError(
                    f"environment {variable}={text!r} is not a validator index: set it to an "
                    f"int >= 0 (used because {config.where('key.index')} is auto)"
                )
            return int(text)
    pod_name = env.get(ENV_POD_NAME, "").strip()
    if pod_name:
        match = _POD_ORDINAL.search(pod_name)
        if match is None:
            raise ConfigError(
                f"environment {ENV_POD_NAME}={pod_name!r} has no numeric suffix "
                f"(like aitbc-validator-12): set {ENV_VALIDATOR_INDEX} or key.index instead"
            )
        return int(match.group(1))
    raise ConfigError(
        f"{config.where('key.index')} is auto but none of {ENV_VALIDATOR_INDEX}, "
        f"{ENV_POD_INDEX} or {ENV_POD_NAME} is set: set key.index to this validator's index "
        "or set one of them"
    )


def _load_genesis(config: NodeConfig) -> tuple[Genesis, Path]:
    path = config.path_of(config.genesis)
    if not path.is_file():
        raise ConfigError(
            f"{config.where('genesis')}: genesis file {path} does not exist: write it with "
            "`aitbc-node genesis` or fix the path (relative paths start at the config's folder)"
        )
    try:
        return load_genesis(path), path.resolve()
    except AitbcError as error:
        raise ConfigError(f"{config.where('genesis')}: {error}") from None


def _derive_keys(
    config: NodeConfig, genesis: Genesis, env: Mapping[str, str], scheme: SignatureScheme
) -> tuple[int, NodeKeys]:
    count = len(genesis.validators)
    if config.key_file is not None:
        key_path = config.path_of(config.key_file)
        try:
            keys = load_key_file(key_path, scheme)
        except ConfigError as error:
            raise ConfigError(f"{config.where('key_file')}: {error}") from None
        public = keys.bls.public.hex()
        for validator in genesis.validators:
            if validator.bls_public_key == public:
                return validator.index, keys
        raise ConfigError(
            f"{config.where('key_file')}: the BLS public key of {key_path} "
            f"({public[:16]}...) belongs to none of the genesis's {count} validators: use the "
            "key file of a genesis validator or regenerate the genesis"
        )
    assert config.key is not None
    index = resolve_index(config, env)
    if index >= count:
        raise ConfigError(
            f"{config.where('key.index')}: validator index {index} is not in the genesis, "
            f"which has {count} validators (0..{count - 1}): check the index (or the pod "
            "ordinal) and the genesis"
        )
    seed = config.key.seed if config.key.seed is not None else genesis.key_seed
    if seed is None:
        raise ConfigError(
            f"{config.where('key')}: no seed: the genesis has no key_seed, so set key.seed to "
            "the seed the genesis was made with, or use key_file"
        )
    bls = testnet_bls_keypair(scheme, seed, index)
    expected = genesis.validators[index].bls_public_key
    if bls.public.hex() != expected:
        hint = (
            f"the genesis was made with key_seed {genesis.key_seed!r}"
            if genesis.key_seed is not None and genesis.key_seed != seed
            else "regenerate the genesis with this seed or fix key.seed"
        )
        raise ConfigError(
            f"{config.where('key.seed')}: seed {seed!r} with index {index} derives BLS public key "
            f"{bls.public.hex()[:16]}..., but genesis validator {index} has {expected[:16]}...: "
            f"{hint}"
        )
    account = testnet_account_keypair(seed, REWARD_ACCOUNT_OFFSET + index)
    return index, NodeKeys(bls=bls, account=account)


def _peers(config: NodeConfig, index: int) -> dict[int, str]:
    peers: dict[int, str] = {}
    if isinstance(config.peers, PeerTemplate):
        for peer in range(config.peers.count):
            if peer != index:
                peers[peer] = config.peers.template.replace("{index}", str(peer))
        return peers
    for position, entry in enumerate(config.peers):
        if entry.index in peers:
            raise ConfigError(
                f"{config.where(f'peers.{position}.index')}: peer {entry.index} is listed "
                "twice: keep one entry per validator"
            )
        if entry.index != index:
            peers[entry.index] = entry.address
    return dict(sorted(peers.items()))


def _env_choice(env: Mapping[str, str], variable: str) -> str | None:
    text = env.get(variable)
    return text.strip() if text is not None and text.strip() else None


def _resolve(
    config: NodeConfig, env: Mapping[str, str], scheme: SignatureScheme
) -> ResolvedNodeConfig:
    genesis, genesis_path = _load_genesis(config)
    if config.chain_id is not None and config.chain_id != genesis.chain_id:
        raise ConfigError(
            f"{config.where('chain_id')}: chain id {config.chain_id!r} differs from the "
            f"genesis chain id {genesis.chain_id!r} ({genesis_path}): fix chain_id or point "
            "genesis at this chain's file"
        )
    index, keys = _derive_keys(config, genesis, env, scheme)

    data_dir_text = _env_choice(env, ENV_DATA_DIR)
    data_dir = (
        Path(data_dir_text).expanduser().absolute()
        if data_dir_text is not None
        else config.path_of(config.data_dir).absolute()
    )
    log_level = _env_choice(env, ENV_LOG_LEVEL)
    if log_level is not None:
        log_level = log_level.lower()
        if log_level not in LOG_LEVELS:
            raise ConfigError(
                f"environment {ENV_LOG_LEVEL}={env[ENV_LOG_LEVEL]!r} is not a log level: use "
                f"one of {', '.join(LOG_LEVELS)}"
            )
    admin_token = _env_choice(env, ENV_ADMIN_TOKEN)
    if admin_token is None and config.admin_token is not None and config.admin_token.strip():
        admin_token = config.admin_token.strip()

    return ResolvedNodeConfig(
        source=None if config.source == "<string>" else Path(config.source),
        index=index,
        chain_id=genesis.chain_id,
        genesis=genesis,
        genesis_path=genesis_path,
        keys=keys,
        grpc_listen=config.listen.grpc,
        ops_listen=config.listen.ops,
        peers=_peers(config, index),
        data_dir=data_dir,
        era=config.era,
        admin_token=admin_token,
        log_level=log_level if log_level is not None else config.log_level,
        mempool=MempoolSettings(**config.mempool.model_dump()),
        byzantine=dict(config.byzantine) if config.byzantine is not None else None,
    )


# -- data eras ------------------------------------------------------------------------------
def era_check(data_dir: str | os.PathLike[str], era: str | None) -> bool:
    """Make ``data_dir`` belong to ``era``: when its marker file (``.aitbc-era``) holds another
    era, or is missing while the folder holds data, delete everything in the folder except the
    marker (and a volume's ``lost+found``) and write the new era. Returns True when it wiped.

    ``era`` None: no era is managed; nothing is checked or wiped. Creates ``data_dir`` when
    missing. Raises ``StorageError`` naming the path when the folder cannot be used."""
    if era is None:
        return False
    folder = Path(data_dir)
    marker = folder / ERA_MARKER
    try:
        folder.mkdir(parents=True, exist_ok=True)
        current = marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
        if current == era:
            return False
        leftovers = [entry for entry in folder.iterdir() if entry.name not in _KEPT_ON_WIPE]
        for entry in leftovers:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        temporary = folder / f"{ERA_MARKER}.tmp{os.getpid()}"
        temporary.write_text(era + "\n", encoding="utf-8")
        os.replace(temporary, marker)
    except OSError as error:
        raise StorageError(
            f"data dir {folder}: cannot check or wipe it for era {era!r} "
            f"({error.strerror or error}: {error.filename or folder}): check that it is a "
            "writable folder"
        ) from None
    return bool(leftovers)
