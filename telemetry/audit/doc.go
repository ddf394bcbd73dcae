// Package audit is drawbridge's security audit log: a file of JSON lines,
// separate from the operational log and only ever appended to, recording
// secret reads and reloads, certificate issuance and signing, enrollment,
// authorization denials, CA rotation, backup and restore.
//
// Each entry carries its sequence number, the hash of the entry before it
// and its own hash (SHA-256 over the previous hash and the entry's
// canonical JSON), so altering, removing or reordering an entry breaks the
// chain, and VerifyAfter (drawbridge audit verify FILE) finds where. A chain
// cannot show that entries were cut from its end: the head (sequence and
// hash) is also written to the operational log when the audit log opens
// and closes, so a copy of that log anchors it.
//
// Secrets never enter the log: Fingerprint gives a keyed HMAC-SHA256 of a
// secret, which tells whether two reads saw the same value and nothing more.
package audit
