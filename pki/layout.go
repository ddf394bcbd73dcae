package pki

// Storage names other packages rely on, for drawbridge backup and restore,
// which copy a state dir without going through the CA.
const (
	// StateLock is the storage lock the CA holds while it changes its state
	// (a new intermediate, a rotation step, a leaf-expiry record). Holding
	// it keeps the CA state still; certmagic's own leaf writes take other
	// locks.
	StateLock = caLockName
	// ResealLock is the storage lock held while the state dir is re-sealed
	// under a new passphrase. It never nests with StateLock.
	ResealLock = resealLockName
	// KeyringKey is the storage key of the keyring: a state dir without it
	// is not one drawbridge can open.
	KeyringKey = keyringName
	// ResealJournalKey exists only while a re-seal runs or after one was
	// interrupted; the next OpenStorage finishes it (and so writes).
	ResealJournalKey = resealJournalName
	// CAStateKey is the storage key of the CA state; an enrolling instance
	// (a sidecar) has none.
	CAStateKey = caStateKey
)
