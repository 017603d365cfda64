//go:build !unix

package remote

func raiseNoFile() {}
