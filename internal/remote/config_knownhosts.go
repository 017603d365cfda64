package remote

// This file applies the options that say how a host's key is checked:
// which known_hosts files are read and written, whether new names are
// hashed, and StrictHostKeyChecking, which fleet narrows to "yes" and
// "accept-new" (hostkey.go does the checking).

import (
	"fmt"
	"strings"
)

const (
	defaultUserKnownHosts   = "~/.ssh/known_hosts ~/.ssh/known_hosts2"
	defaultGlobalKnownHosts = "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"
)

// knownHosts sets KnownHostsFiles (Options', else UserKnownHostsFile),
// GlobalKnownHostsFiles and HashKnownHosts.
func (h *hostConfig) knownHosts(e *Endpoint) error {
	if len(h.o.KnownHostsFiles) > 0 {
		for _, f := range h.o.KnownHostsFiles {
			p, err := h.path(e, f)
			if err != nil {
				return fmt.Errorf("remote: known_hosts file %q: %v", f, err)
			}
			e.KnownHostsFiles = append(e.KnownHostsFiles, p)
		}
	} else {
		files, err := h.pathList(e, "UserKnownHostsFile", defaultUserKnownHosts)
		if err != nil {
			return err
		}
		e.KnownHostsFiles = files
	}
	files, err := h.pathList(e, "GlobalKnownHostsFile", defaultGlobalKnownHosts)
	if err != nil {
		return err
	}
	e.GlobalKnownHostsFiles = files
	e.HashKnownHosts, err = h.getBool("HashKnownHosts")
	return err
}

// pathList reads a keyword that is a list of file names (def when unset),
// "none" standing for no file, and expands them.
func (h *hostConfig) pathList(e *Endpoint, key, def string) ([]string, error) {
	files := h.getAll(key)
	if len(files) == 0 {
		files = strings.Fields(def)
	}
	var out []string
	for _, f := range files {
		if strings.EqualFold(f, "none") {
			continue
		}
		p, err := h.path(e, f)
		if err != nil {
			return nil, h.errorf("%s: %v", key, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// strictHostKeyChecking sets StrictHostKeyChecking: Options', else the
// config's, else yes. ssh's "no" is refused in Options, and taken as
// accept-new in the config: ssh would record unknown keys and connect
// despite a changed one; fleet keeps the first half only.
func (h *hostConfig) strictHostKeyChecking(e *Endpoint) error {
	switch strings.ToLower(h.o.StrictHostKeyChecking) {
	case "":
	case "yes":
		e.StrictHostKeyChecking = strictYes
		return nil
	case "accept-new":
		e.StrictHostKeyChecking = strictAcceptNew
		return nil
	case "no", "off":
		return fmt.Errorf("remote: StrictHostKeyChecking=%s is not supported (a changed host key is always refused); use accept-new to record unknown hosts", h.o.StrictHostKeyChecking)
	default:
		return fmt.Errorf("remote: StrictHostKeyChecking %q: want yes or accept-new", h.o.StrictHostKeyChecking)
	}
	v := h.get("StrictHostKeyChecking")
	switch strings.ToLower(v) {
	case "", "yes", "ask", "true":
		e.StrictHostKeyChecking = strictYes
	case "accept-new", "no", "off", "false":
		e.StrictHostKeyChecking = strictAcceptNew
	default:
		return h.errorf("StrictHostKeyChecking %q is not yes, accept-new, ask or no", v)
	}
	return nil
}
