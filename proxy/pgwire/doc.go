// Package pgwire is the small part of PostgreSQL's wire protocol that a TLS
// gateway must speak: the untyped startup packets (SSLRequest,
// GSSENCRequest, CancelRequest, StartupMessage), the one-byte answer to an
// SSLRequest, and ErrorResponse, so a refused client reads a proper
// PostgreSQL error instead of a dropped connection. Everything after the
// startup is relayed as bytes; a Framer watches them pass to find message
// boundaries (ReadyForQuery and its transaction status), so a draining
// gateway can end a session between transactions. Reference: PostgreSQL documentation,
// "Frontend/Backend Protocol", sections 55.2.10 (SSL Session Encryption)
// and 55.7 (Message Formats).
package pgwire
