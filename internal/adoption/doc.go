// Package adoption holds the adoption test: a host module pinned to older
// releases of cobra and urfave/cli adds the SDK as an author would, and the
// test checks that nothing of the host moves and that no server dependency
// comes with the SDK.
package adoption
