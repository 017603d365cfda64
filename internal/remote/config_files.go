package remote

// This file reads the ssh_config files and looks keywords up in them.
// Resolve runs for every connection (and every host behind a jump host),
// so each file is parsed once per process and kept, and parsed again only
// when it has changed.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kevinburke/ssh_config"
)

const systemSSHConfig = "/etc/ssh/ssh_config"

// sshConfig is a list of parsed ssh_config files; the first value obtained
// for a keyword wins.
type sshConfig struct {
	names []string
	files []*ssh_config.Config
}

// loadConfig reads files, or with nil the default ones (those of them
// that exist).
func loadConfig(files []string, env *localEnv) (*sshConfig, error) {
	explicit := files != nil
	if !explicit {
		home, err := env.homeDir()
		if err == nil {
			files = append(files, filepath.Join(home, ".ssh", "config"))
		}
		files = append(files, systemSSHConfig)
	}
	c := &sshConfig{}
	for _, name := range files {
		cfg, err := parsedFiles.load(name)
		if err != nil {
			if !explicit && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		c.names = append(c.names, name)
		c.files = append(c.files, cfg)
	}
	return c, nil
}

// parsedFiles holds every ssh_config file read in this process.
var parsedFiles = &configCache{files: map[string]parsedFile{}}

// configCache holds parsed ssh_config files by name. It is safe for
// concurrent use, and so are the parsed files (lookups only read them).
type configCache struct {
	mu    sync.Mutex
	files map[string]parsedFile
}

// parsedFile is a file as it was parsed: what os.Stat said of it then,
// and its contents. A file it Includes is read with it.
type parsedFile struct {
	info os.FileInfo
	cfg  *ssh_config.Config
}

// load returns the parsed file name: as parsed before if it is still the
// same file, with the same size and modification time; else read and
// parsed now. A missing file is an error wrapping os.ErrNotExist.
func (c *configCache) load(name string) (*ssh_config.Config, error) {
	info, statErr := os.Stat(name)
	if statErr == nil {
		c.mu.Lock()
		p, ok := c.files[name]
		c.mu.Unlock()
		if ok && os.SameFile(p.info, info) && p.info.Size() == info.Size() && p.info.ModTime().Equal(info.ModTime()) {
			return p.cfg, nil
		}
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("remote: ssh_config: %w", err)
	}
	cfg, err := ssh_config.DecodeBytes(b)
	if err != nil {
		return nil, fmt.Errorf("remote: ssh_config %s: %w", name, err)
	}
	if statErr == nil {
		// Read after the stat: if the file changed in between, the next
		// load sees another stat and parses it again.
		c.mu.Lock()
		c.files[name] = parsedFile{info: info, cfg: cfg}
		c.mu.Unlock()
	}
	return cfg, nil
}

func (c *sshConfig) get(alias, key string) (string, error) {
	for i, f := range c.files {
		v, err := f.Get(alias, key)
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", c.names[i], key, err)
		}
		if v != "" {
			return v, nil
		}
	}
	return "", nil
}

func (c *sshConfig) getAll(alias, key string) ([]string, error) {
	var out []string
	for i, f := range c.files {
		v, err := f.GetAll(alias, key)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", c.names[i], key, err)
		}
		out = append(out, v...)
	}
	return out, nil
}

func (c *sshConfig) getBool(alias, key string) (bool, error) {
	v, err := c.get(alias, key)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(v) {
	case "", "no", "false":
		return false, nil
	case "yes", "true":
		return true, nil
	}
	return false, fmt.Errorf("%s %q: want yes or no", key, v)
}

// getSeconds reads a duration in seconds (ssh also accepts time formats
// like 1m30s for some keywords; plain seconds and Go-style units are taken).
func (c *sshConfig) getSeconds(alias, key string) (time.Duration, bool, error) {
	v, err := c.get(alias, key)
	if err != nil || v == "" {
		return 0, false, err
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true, nil
	}
	if d, err := time.ParseDuration(strings.ToLower(v)); err == nil && d >= 0 {
		return d, true, nil
	}
	return 0, false, fmt.Errorf("%s %q is not a number of seconds", key, v)
}
