// Package layout names what lies in a PKI state dir: the storage keys and
// storage locks that the sealed storage, the CA, enrollment and backup
// all rely on. It imports nothing, so a tool that copies a state dir
// (backup, restore) can honour the locks without linking the CA.
package layout
