// Package localnix checks that this machine's Nix can do what fleet asks
// of it — evaluate the hosts' flakes and build their systems — and, when it
// cannot, says in one line what is wrong and in one more the command that
// fixes it.
//
// Nix's own words for these problems are a wall of repeated warnings
// ("warning: the group 'nixbld' specified in 'build-users-group' does not
// exist", three times, then the same as an error) that name no fix. fleet
// run, check and status call [Preflight] before any host is touched, and
// the executor passes the log of a failed Nix command through [Diagnose],
// so that each of these ends in a [Problem] (exit status 2: the machine
// must be fixed first, no host failed):
//
//   - Nix is not installed;
//   - root's Nix wants build users that do not exist;
//   - a non-root user has no nix-daemon to talk to and cannot write the store;
//   - the flakes feature is off where fleet cannot turn it on;
//   - a flake has no flake.lock, or one that lacks inputs of its flake.nix;
//   - a flake in a git work tree has a flake.nix or flake.lock git does
//     not track (Nix reads only tracked files there: internal/flakeref).
//
// A missing or stale flake.lock is refused, not written: fleet deploys what
// the checkout says and never edits it (a lock file is a decision worth a
// commit, and writing one fetches every input). The fix is one command,
// `nix flake lock DIR`, which adds what is missing without updating the
// rest.
package localnix

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/fleet-deploy/fleet/internal/flakeref"
	"github.com/fleet-deploy/fleet/internal/nixenc"
	"github.com/fleet-deploy/fleet/internal/shell"
)

// Problem is something wrong with this machine's Nix, not with a host or
// with fleet.star: What says what, Fix the command that mends it.
type Problem struct {
	What string
	Fix  string
}

func (p *Problem) Error() string { return p.What + "\n  fix: " + p.Fix }

// Args is args after the option fleet passes to every Nix command it
// runs, so that a Nix without flakes enabled in nix.conf works all the
// same. The slice is new each call.
func Args(args ...string) []string {
	return append([]string{"--option", "extra-experimental-features", "nix-command flakes"}, args...)
}

// Options say what fleet is about to ask of Nix.
type Options struct {
	// Flakes are the flakes the selected hosts are evaluated from: local
	// directories (absolute) or flake references.
	Flakes []string
	// Overrides are --override-input's NAME → FLAKE: an overridden input
	// needs no entry in flake.lock.
	Overrides map[string]string
}

// Preflight checks, without building anything, that Nix is installed,
// that it can build here (build users, store or daemon) and that every
// local flake in o is locked. It returns a *Problem, or nil.
func Preflight(ctx context.Context, o Options) error {
	for _, c := range []string{"nix", "nix-build", "nix-instantiate", "nix-store"} {
		if _, err := exec.LookPath(c); err != nil {
			return NotInstalled(c)
		}
	}
	// Nix's settings and the flakes' locks are two Nix processes of their
	// own: asked at once, told in this order.
	flakes := make(chan *Problem, 1)
	go func() { flakes <- checkFlakes(ctx, o) }()
	conf, err := showConfig(ctx)
	if err != nil {
		<-flakes
		return err
	}
	if p := buildAccess(conf); p != nil {
		<-flakes
		return p
	}
	if p := <-flakes; p != nil {
		return p
	}
	var overridden []string
	for _, ref := range o.Overrides {
		overridden = append(overridden, ref)
	}
	for _, dir := range localFlakes(overridden) {
		if p := checkTracked(dir); p != nil {
			return p
		}
	}
	return nil
}

// checkFlakes checks that every local flake in o is tracked and locked.
func checkFlakes(ctx context.Context, o Options) *Problem {
	for _, dir := range localFlakes(o.Flakes) {
		if p := checkTracked(dir); p != nil {
			return p
		}
		if p := checkLock(ctx, dir, o.Overrides); p != nil {
			return p
		}
	}
	return nil
}

// checkTracked refuses a flake in a git work tree whose flake.nix or
// flake.lock git does not track: Nix reads only tracked files there
// (internal/flakeref) and would fail with a store path that does not
// exist.
func checkTracked(dir string) *Problem {
	var ue *flakeref.UntrackedError
	if _, err := flakeref.Local(dir); errors.As(err, &ue) {
		return &Problem{What: ue.What(), Fix: ue.Fix()}
	}
	return nil // other errors: the build reports them
}

// NotInstalled is the Problem of a Nix command missing from PATH.
func NotInstalled(cmd string) *Problem {
	fix := "install Nix: sh <(curl -L https://nixos.org/nix/install) --daemon"
	if _, err := os.Stat("/etc/debian_version"); err == nil {
		fix = "sudo apt-get install nix-bin   (then create build users: see fleet's scripts/deps.sh, or `make deps` in its checkout)"
	}
	return &Problem{What: fmt.Sprintf("Nix is not installed on this machine (no %s on PATH); fleet builds the hosts' systems with it", cmd), Fix: fix}
}

// showConfig returns Nix's effective settings (nix.conf, NIX_CONFIG and
// defaults), as `nix show-config` prints them.
func showConfig(ctx context.Context) (map[string]string, error) {
	// `nix show-config` is `nix config show` since Nix 2.20, and still
	// answers there (with a deprecation warning on stderr).
	cmd := exec.CommandContext(ctx, "nix", Args("show-config")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if p := Diagnose(stderr.String()); p != nil {
			return nil, p
		}
		return nil, &Problem{
			What: fmt.Sprintf("this machine's Nix does not start: nix show-config: %v: %s", err, lastLine(stderr.String())),
			Fix:  "check /etc/nix/nix.conf and $NIX_CONFIG (`nix show-config` must work)",
		}
	}
	conf := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " = "); ok {
			conf[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return conf, nil
}

// buildAccess says whether this process can build with the store conf
// names: as root on a local store, build users must exist if asked for;
// otherwise a daemon must answer, or the store must be writable.
func buildAccess(conf map[string]string) *Problem {
	store := conf["store"]
	if store == "" {
		store = "auto"
	}
	local := store == "auto" || store == "local" || strings.HasPrefix(store, "/")
	if !local {
		return nil // daemon, ssh-ng://, ...: Nix says so when it cannot reach it
	}
	if os.Geteuid() == 0 {
		if g := conf["build-users-group"]; g != "" {
			if _, err := user.LookupGroup(g); err != nil {
				return noBuildUsers(g)
			}
		}
		return nil
	}
	// Not root: "auto" uses the daemon when its socket exists, the store
	// directly when this user may write it.
	if store == "auto" {
		if _, err := os.Stat(daemonSocket()); err == nil {
			return nil
		}
	}
	if writable("/nix/var/nix/db") {
		return nil
	}
	u := "you"
	if cu, err := user.Current(); err == nil {
		u = cu.Username
	}
	return &Problem{
		What: fmt.Sprintf("no nix-daemon is running (no %s) and %s cannot write the Nix store", daemonSocket(), u),
		Fix:  "sudo systemctl enable --now nix-daemon.socket   (Debian: apt-get install nix-setup-systemd), or run fleet as root",
	}
}

func noBuildUsers(group string) *Problem {
	return &Problem{
		What: fmt.Sprintf("this machine's Nix cannot build: group '%s' (nix.conf's build-users-group) does not exist, and Nix builds as its members", group),
		Fix:  fmt.Sprintf("create the build users: sudo groupadd -r %[1]s && for i in $(seq 10); do sudo useradd -r -g %[1]s -G %[1]s -d /var/empty -s /usr/sbin/nologin %[1]s$i; done   (or single-user Nix: add `build-users-group =` to /etc/nix/nix.conf)", group),
	}
}

func daemonSocket() string {
	if d := os.Getenv("NIX_DAEMON_SOCKET_PATH"); d != "" {
		return d
	}
	state := os.Getenv("NIX_STATE_DIR")
	if state == "" {
		state = "/nix/var/nix"
	}
	return filepath.Join(state, "daemon-socket", "socket")
}

func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".fleet-probe-*")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

// localFlakes are the distinct local directories among flakes.
func localFlakes(flakes []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range flakes {
		dir := f
		if d := flakeref.Dir(f); d != "" {
			dir = d
		}
		if !filepath.IsAbs(dir) || seen[dir] {
			continue
		}
		seen[dir] = true
		out = append(out, dir)
	}
	sort.Strings(out)
	return out
}

// checkLock refuses a local flake without flake.lock unless every input
// its flake.nix declares is overridden (fleet then never locks it).
func checkLock(ctx context.Context, dir string, overrides map[string]string) *Problem {
	if _, err := os.Stat(filepath.Join(dir, "flake.lock")); err == nil {
		return nil // whether it lacks inputs, Nix says when it evaluates (Diagnose)
	}
	inputs, err := declaredInputs(ctx, dir)
	if err != nil {
		return nil // flake.nix does not evaluate: Nix reports it with its position
	}
	var unlocked []string
	for _, in := range inputs {
		if _, ok := overrides[in]; !ok {
			unlocked = append(unlocked, in)
		}
	}
	if len(unlocked) == 0 {
		return nil
	}
	return lockProblem(dir, false, unlocked)
}

func lockProblem(dir string, stale bool, inputs []string) *Problem {
	what := fmt.Sprintf("%s has no flake.lock", dir)
	if stale {
		what = fmt.Sprintf("%s/flake.lock lacks inputs that flake.nix declares", dir)
	}
	if len(inputs) > 0 {
		what += fmt.Sprintf(" (inputs %s)", strings.Join(inputs, ", "))
	}
	what += "; fleet deploys what is locked and never writes the lock file itself"
	return &Problem{What: what, Fix: fmt.Sprintf("nix --extra-experimental-features 'nix-command flakes' flake lock %s   (then commit flake.lock)", shell.Quote(dir))}
}

// declaredInputs are the names of the inputs dir/flake.nix declares.
func declaredInputs(ctx context.Context, dir string) ([]string, error) {
	file := filepath.Join(dir, "flake.nix")
	lit, err := nixenc.String(file)
	if err != nil {
		return nil, err
	}
	expr := fmt.Sprintf("builtins.attrNames ((import (/. + %s)).inputs or {})", lit)
	out, err := exec.CommandContext(ctx, "nix-instantiate", Args("--eval", "--json", "--expr", expr)...).Output()
	if err != nil {
		return nil, err
	}
	var names []string
	if err := json.Unmarshal(out, &names); err != nil {
		return nil, err
	}
	return names, nil
}

var (
	buildUsersRE = regexp.MustCompile(`the group '([^']*)' specified in 'build-users-group' does not exist`)
	daemonRE     = regexp.MustCompile(`cannot connect to socket at '([^']+)'|cannot open connection to remote store 'daemon'`)
	featureRE    = regexp.MustCompile(`experimental Nix feature '([^']+)' is disabled`)
	lockRE       = regexp.MustCompile(`flake '([^']+)' requires lock file changes but they're not allowed`)
	permRE       = regexp.MustCompile(`(?:opening lock file|creating directory|getting status of|could not set permissions on) '(/nix/[^']*)'(?: to \d+)?: (?:Permission denied|Operation not permitted)`)
)

// Diagnose reads the stderr of a failed Nix command and returns the
// Problem behind it, or nil when the failure is not about this machine's
// Nix (a build that fails, an evaluation error in the flake, ...).
func Diagnose(log string) *Problem {
	if m := buildUsersRE.FindStringSubmatch(log); m != nil {
		return noBuildUsers(m[1])
	}
	if m := lockRE.FindStringSubmatch(log); m != nil {
		dir := flakeref.Dir(m[1])
		if dir == "" {
			dir = m[1]
		}
		_, err := os.Stat(filepath.Join(dir, "flake.lock"))
		return lockProblem(dir, err == nil, nil)
	}
	if m := featureRE.FindStringSubmatch(log); m != nil {
		return &Problem{
			What: fmt.Sprintf("this machine's Nix has the experimental feature '%s' off, and is too old to have it turned on per command", m[1]),
			Fix:  "add `experimental-features = nix-command flakes` to /etc/nix/nix.conf (Nix ≥ 2.4)",
		}
	}
	if daemonRE.MatchString(log) {
		return &Problem{
			What: "this machine's nix-daemon is not running, and this user reaches the store only through it",
			Fix:  "sudo systemctl enable --now nix-daemon.socket   (Debian: apt-get install nix-setup-systemd), or run fleet as root",
		}
	}
	if m := permRE.FindStringSubmatch(log); m != nil {
		return &Problem{
			What: fmt.Sprintf("this user cannot write the Nix store (%s: not permitted) and no nix-daemon answers", m[1]),
			Fix:  "sudo systemctl enable --now nix-daemon.socket   (Debian: apt-get install nix-setup-systemd), or run fleet as root",
		}
	}
	return nil
}

// As returns the Problem in err's chain, if any.
func As(err error) (*Problem, bool) {
	var p *Problem
	ok := errors.As(err, &p)
	return p, ok
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// Probe builds a derivation that exists nowhere else (Nix's builtin
// buildenv builder, nothing fetched, no shell needed, so a sandbox does
// not matter) and returns Nix's version: proof that this machine's Nix
// evaluates and builds, as fleet doctor reports it. The output is left
// without a GC root.
func Probe(ctx context.Context) (version string, err error) {
	if err := Preflight(ctx, Options{}); err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, "nix-store", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("nix-store --version: %w", err)
	}
	version = strings.TrimSpace(string(out))
	nonce := make([]byte, 8)
	rand.Read(nonce)
	expr := fmt.Sprintf(`derivation { name = "fleet-doctor-probe"; system = builtins.currentSystem; builder = "builtin:buildenv"; derivations = []; manifest = "/dev/null"; nonce = "%x"; }`, nonce)
	cmd := exec.CommandContext(ctx, "nix-build", Args("--no-out-link", "--expr", expr)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if p := Diagnose(stderr.String()); p != nil {
			return version, p
		}
		return version, fmt.Errorf("building a probe derivation: %v: %s", err, lastLine(stderr.String()))
	}
	return version, nil
}
