"""Why a node refused something a peer sent: the ``reason`` of a ``Rejected`` action, and the
label values of ``aitbc_byzantine_rejected_total{reason}`` (every one created at 0).

Every reason but ``STALE_MESSAGE`` names something an honest validator never sends (a bad
signature, a broken rule, a flood); ``STALE_MESSAGE`` also counts honest stragglers (a message
of an epoch this node has left, a vote more than one round old), which a replay looks like.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # -- screening, before any signature is checked
    SENDER_MISMATCH = "sender_mismatch"
    ROUND_TOO_FAR_AHEAD = "round_too_far_ahead"
    WRONG_LEADER = "wrong_leader"
    MISDIRECTED_VOTE = "misdirected_vote"
    STALE_MESSAGE = "stale_message"
    # -- signatures and certificates
    UNKNOWN_PROPOSER = "unknown_proposer"
    BAD_PROPOSAL_SIGNATURE = "bad_proposal_signature"
    BAD_RANDAO_REVEAL = "bad_randao_reveal"
    UNKNOWN_VOTER = "unknown_voter"
    BAD_VOTE_SIGNATURE = "bad_vote_signature"
    BAD_TIMEOUT_SIGNATURE = "bad_timeout_signature"
    TIMEOUT_BAD_HIGH_QC = "timeout_bad_high_qc"
    QC_WRONG_EPOCH = "qc_wrong_epoch"
    QC_BAD_SIGNERS = "qc_bad_signers"
    QC_NO_QUORUM = "qc_no_quorum"
    QC_BAD_SIGNATURE = "qc_bad_signature"
    TC_WRONG_EPOCH = "tc_wrong_epoch"
    TC_BAD_GROUPS = "tc_bad_groups"
    TC_NO_QUORUM = "tc_no_quorum"
    TC_BAD_SIGNATURE = "tc_bad_signature"
    TC_HIGH_QC_MISMATCH = "tc_high_qc_mismatch"
    EVIDENCE_UNKNOWN_KIND = "evidence_unknown_kind"
    EVIDENCE_WRONG_EPOCH = "evidence_wrong_epoch"
    EVIDENCE_UNKNOWN_OFFENDER = "evidence_unknown_offender"
    EVIDENCE_SAME_BLOCK = "evidence_same_block"
    EVIDENCE_BAD_SIGNATURE = "evidence_bad_signature"
    # -- the block's place in the tree and the voting rules
    BAD_EPOCH_START = "bad_epoch_start"
    PARENT_NOT_JUSTIFIED = "parent_not_justified"
    BAD_HEIGHT = "bad_height"
    ROUND_NOT_INCREASING = "round_not_increasing"
    QC_HEIGHT_MISMATCH = "qc_height_mismatch"
    TIMESTAMP_BEFORE_PARENT = "timestamp_before_parent"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    PAYLOAD_AFTER_EPOCH_END = "payload_after_epoch_end"
    TOO_MANY_BATCHES = "too_many_batches"
    TOO_MUCH_EVIDENCE = "too_much_evidence"
    ROUND_OUT_OF_RANGE = "round_out_of_range"
    NO_CERTIFICATE_FOR_ROUND = "no_certificate_for_round"
    STALE_JUSTIFY = "stale_justify"
    PROPOSAL_FLOOD = "proposal_flood"
    SYNC_BAD_QC = "sync_bad_qc"
    SYNC_UNCERTIFIED_BLOCK = "sync_uncertified_block"
    # -- the runtime (transport, batches, sync answers) and the ledger
    UNDECODABLE_MESSAGE = "undecodable_message"
    OVERSIZED_MESSAGE = "oversized_message"
    WRONG_CHAIN = "wrong_chain"
    INVALID_BATCH = "invalid_batch"
    BATCH_WRONG_AUTHOR = "batch_wrong_author"
    BATCH_FLOOD = "batch_flood"
    BAD_SYNC_ANSWER = "bad_sync_answer"
    REGISTRATION_REFUSED = "registration_refused"


#: Every reason, in declaration order (the metric's pre-created labels).
REJECT_REASONS: tuple[str, ...] = tuple(reason.value for reason in Reason)
