package identity_test

import (
	"fmt"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
)

func ExampleAllowList() {
	al, err := identity.NewAllowList([]string{"spiffe://drawbridge.internal/web", "spiffe://drawbridge.internal/jobs/*"})
	if err != nil {
		panic(err)
	}
	for _, s := range []string{"spiffe://drawbridge.internal/web", "spiffe://drawbridge.internal/jobs/nightly", "spiffe://drawbridge.internal/db"} {
		id, _ := identity.Parse(s)
		fmt.Println(s, al.Allows(id))
	}
	// Output:
	// spiffe://drawbridge.internal/web true
	// spiffe://drawbridge.internal/jobs/nightly true
	// spiffe://drawbridge.internal/db false
}
