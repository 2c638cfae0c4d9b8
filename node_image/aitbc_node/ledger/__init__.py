"""The ledger: canonical transactions and the account/validator state of one node.

Independent of the consensus package: it receives plain ints and bytes.
"""

from aitbc_node.ledger.records import Account, BlockReceipt, Unbonding, ValidatorRecord
from aitbc_node.ledger.state import (
    AUTHORITY_REWARD_PERCENT,
    NONCE_WINDOW,
    REGISTRATION_LIMIT_REASONS,
    REJECT_REASONS,
    SLASH_DIVISOR,
    LedgerState,
)
from aitbc_node.ledger.tx import (
    MAX_MEMO_BYTES,
    MAX_TX_BYTES,
    Transaction,
    TxKind,
    decode_transaction,
    sign_register,
    sign_stake,
    sign_transaction,
    sign_transfer,
    sign_unstake,
    tx_id,
    verify_transaction_signature,
)

__all__ = [
    "AUTHORITY_REWARD_PERCENT",
    "MAX_MEMO_BYTES",
    "MAX_TX_BYTES",
    "NONCE_WINDOW",
    "REGISTRATION_LIMIT_REASONS",
    "REJECT_REASONS",
    "SLASH_DIVISOR",
    "Account",
    "BlockReceipt",
    "LedgerState",
    "Transaction",
    "TxKind",
    "Unbonding",
    "ValidatorRecord",
    "decode_transaction",
    "sign_register",
    "sign_stake",
    "sign_transaction",
    "sign_transfer",
    "sign_unstake",
    "tx_id",
    "verify_transaction_signature",
]
