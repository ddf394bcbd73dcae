package layout

// Storage keys (paths below the state dir, slash-separated) and storage
// lock names that more than one package relies on.
const (
	// KeyringKey is the storage key of the keyring: a state dir without it
	// is not one drawbridge can open.
	KeyringKey = "drawbridge/keyring.json"
	// KeyringLock is held while a first start creates the keyring, so
	// processes sharing a volume agree on one.
	KeyringLock = "drawbridge-keyring-create"
	// ResealJournalKey exists only while a re-seal runs or after one was
	// interrupted; the next open of the storage finishes it (and so writes).
	ResealJournalKey = "drawbridge/keyring-reseal.json"
	// ResealLock is the storage lock held while the state dir is re-sealed
	// under a new passphrase. It never nests with StateLock.
	ResealLock = "drawbridge-reseal"

	// CAStateKey is the storage key of the CA state; an enrolling instance
	// (a sidecar) has none.
	CAStateKey = "drawbridge/ca/state.json"
	// CAKeyPrefix starts the storage key of every CA private key.
	CAKeyPrefix = "drawbridge/ca/keys/"
	// StateLock is the storage lock the CA holds while it changes its state
	// (a new intermediate, a rotation step, a leaf-expiry record). Holding
	// it keeps the CA state still; certmagic's own leaf writes take other
	// locks.
	StateLock = "drawbridge-ca-state"

	// EnrollBundleKey is where an enrolling instance keeps the trust bundle
	// of the last enrollment response.
	EnrollBundleKey = "drawbridge/enroll/trust-bundle.pem"
)
