package journal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// secretKeyFile is the state directory's key of the tags that plans and
// runs show of secrets (runtime.Run.SecretTag).
const secretKeyFile = "secret-tag.key"

// secretKeySize is the key's length: SHA-256's output, the least RFC
// 2104 recommends for HMAC-SHA256.
const secretKeySize = 32

// SecretKey returns the random key of the state directory dir, creating
// dir (0700) and the key (0600, 32 random bytes) on first use. Every
// plan and run with one state directory tags a secret alike; another
// state directory, or anyone without the file, cannot tell what a tag
// stands for.
func SecretKey(dir string) ([]byte, error) {
	file := filepath.Join(dir, secretKeyFile)
	key, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = newSecretKey(dir, file)
	}
	if err != nil {
		return nil, fmt.Errorf("secret tag key: %w", err)
	}
	if len(key) != secretKeySize {
		return nil, fmt.Errorf("secret tag key: %s holds %d bytes, not %d: remove it and fleet makes a new one", file, len(key), secretKeySize)
	}
	return key, nil
}

// newSecretKey writes a fresh key to file, unless another fleet just
// did: then it reads that one.
func newSecretKey(dir, file string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key := make([]byte, secretKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	// Written under a temporary name and linked into place, so that a
	// concurrent fleet never reads half a key.
	tmp, err := os.CreateTemp(dir, ".secret-tag.key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), file); errors.Is(err, fs.ErrExist) {
		return os.ReadFile(file)
	} else if err != nil {
		return nil, err
	}
	return key, nil
}
