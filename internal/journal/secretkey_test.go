package journal

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestSecretKey: one key per state directory, made once (even by
// fleets racing to make it), private, and refused when damaged.
func TestSecretKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := SecretKey(dir)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for _, k := range keys {
		if len(k) != 32 || !bytes.Equal(k, keys[0]) {
			t.Fatalf("keys differ: %x", keys)
		}
	}
	if other, _ := SecretKey(t.TempDir()); bytes.Equal(other, keys[0]) {
		t.Error("two state directories share a key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state dir holds %v", entries)
	}
	st, _ := os.Stat(filepath.Join(dir, "secret-tag.key"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	os.WriteFile(filepath.Join(dir, "secret-tag.key"), []byte("short"), 0o600)
	if _, err := SecretKey(dir); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("damaged key: %v", err)
	}
}
