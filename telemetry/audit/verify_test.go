package audit

import "io"

// Verify is VerifyAfter for a file that starts a chain: the tests'
// shorthand (drawbridge audit verify calls VerifyAfter for every file).
func Verify(r io.Reader) (Summary, error) { return VerifyAfter(r, 0, "") }
