package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fleet-deploy/fleet/runtime"
)

// Closures is the file `fleet build --out` writes and `fleet run
// --closures` deploys (docs/closures.md): what a CI built, by host, so
// that a deploy elsewhere needs no evaluation.
type Closures struct {
	Version int `json:"version"`
	// Revision is the git commit of the repository holding the
	// fleet.star that was built, nil outside a repository.
	Revision *string                 `json:"revision"`
	Hosts    map[string]ClosureEntry `json:"hosts"`
}

// ClosureEntry is one host's built system.
type ClosureEntry struct {
	Closure string `json:"closure"`
	System  string `json:"system"`
}

// ClosuresVersion is the version of the closures file this fleet writes
// and reads.
const ClosuresVersion = 1

// NewClosures records what Build built for hosts, with the revision of
// the repository file is in.
func NewClosures(ctx context.Context, file string, hosts []*runtime.Host, built map[string]string) *Closures {
	c := &Closures{Version: ClosuresVersion, Revision: revision(ctx, file), Hosts: map[string]ClosureEntry{}}
	for _, h := range hosts {
		if p, ok := built[h.Name]; ok {
			c.Hosts[h.Name] = ClosureEntry{Closure: p, System: h.System}
		}
	}
	return c
}

// revision is the commit checked out in the git repository holding
// file, nil if there is none (or no git).
func revision(ctx context.Context, file string) *string {
	out, err := exec.CommandContext(ctx, "git", "-C", filepath.Dir(file), "rev-parse", "HEAD").Output()
	if err != nil {
		return nil
	}
	rev := strings.TrimSpace(string(out))
	return &rev
}

// ReadClosures reads and checks a closures file.
func ReadClosures(file string) (*Closures, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var c Closures
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: not a closures file: %v", file, err)
	}
	if c.Version != ClosuresVersion {
		return nil, fmt.Errorf("%s: version %d, this fleet reads version %d", file, c.Version, ClosuresVersion)
	}
	for name, e := range c.Hosts {
		if !isStorePath(e.Closure) {
			return nil, fmt.Errorf("%s: host %s: closure %q is not a store path", file, name, e.Closure)
		}
	}
	return &c, nil
}

// For returns the closure of each of hosts, by name: every host must be
// in the file, built for the system the host declares.
func (c *Closures) For(hosts []*runtime.Host) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for _, h := range hosts {
		e, ok := c.Hosts[h.Name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("host %s is selected but not in the file (it has %s)", h.Name, strings.Join(c.names(), ", ")))
		case e.System != h.System:
			errs = append(errs, fmt.Errorf("host %s: the file's closure was built for %s, the host is %s", h.Name, e.System, h.System))
		default:
			out[h.Name] = e.Closure
		}
	}
	return out, errors.Join(errs...)
}

func (c *Closures) names() []string {
	var names []string
	for n := range c.Hosts {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return []string{"no hosts"}
	}
	return names
}

// Realise makes sure every closure is in this machine's store, asking
// the substituters for those that are not (nix-store --realise): a push
// copies from the local store. The error names each closure missing.
func Realise(ctx context.Context, closures map[string]string) error {
	var paths []string
	for _, p := range closures {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	if len(paths) == 0 {
		return nil
	}
	out, err := exec.CommandContext(ctx, "nix-store", append([]string{"--check-validity", "--print-invalid"}, paths...)...).Output()
	if err != nil {
		return fmt.Errorf("nix-store --check-validity: %w", err)
	}
	var errs []error
	for _, p := range strings.Fields(string(out)) {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "nix-store", "--realise", p)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			why := lastError(stderr.String())
			if why == "" {
				why = err.Error()
			}
			errs = append(errs, fmt.Errorf("%s (closure of %s) is not in this machine's store and no substituter has it: %s", p, hostsOf(closures, p), why))
		}
	}
	return errors.Join(errs...)
}

// hostsOf names the hosts whose closure is p.
func hostsOf(closures map[string]string, p string) string {
	var names []string
	for n, c := range closures {
		if c == p {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// given returns the closures of hosts from Options.Closures, as Build
// would have built them.
func (e *Executor) given(hosts []*runtime.Host) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for _, h := range hosts {
		if p, ok := e.opts.Closures[h.Name]; ok {
			out[h.Name] = p
		} else {
			errs = append(errs, &runtime.HostError{Host: h.Name, Step: "build", Err: errors.New("no closure given for this host (--closures)")})
		}
	}
	return out, errors.Join(errs...)
}
