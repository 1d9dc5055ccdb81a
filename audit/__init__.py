"""Auditing, for auditors and program managers: checking each instance's
hash chain, replaying its history, signed checkpoints of the whole record,
exports an outsider can check, the history timeline and the search."""
