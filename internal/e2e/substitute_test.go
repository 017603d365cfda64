package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/fleet-deploy/fleet/internal/lab"
)

// TestSubstituteOnDestination deploys closures of which two of the four
// payload paths (half the bytes) are in a real binary cache: `nix copy --to file://` signed
// with a key the hosts trust, served over HTTP from this process (inside
// the lab's network namespace, so the hosts reach it), each host under
// its own URL prefix so that the access log says who fetched what. Host
// a has substitute = True; c and d are deployed with
// --substitute-on-destination, d's substituter being a closed port; b
// has neither. Afterwards every host's store holds its whole closure,
// each path verified; a's and c's pushes sent only what the cache
// lacked, and the log shows they fetched the rest; b's push sent
// everything and b asked the cache for nothing; d's push, its cache
// unreachable, sent everything too and did not fail.
func TestSubstituteOnDestination(t *testing.T) {
	l := startLab(t, lab.Options{Hosts: []string{"a", "b", "c", "d"}})
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("flake.nix", `{ inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11"; outputs = { self, nixpkgs }: { }; }`+"\n")
	file := write("fleet.star", `def node(name, substitute = False):
    return host(name = name, target_host = name, substitute = substitute, nixos = nixos_system(
        modules = [{"fleet": {"test": {"payload": {"count": 4, "sizeKB": 512}}}}],
        special_args = {"name": name}))

node("a", substitute = True)
node("b")
node("c")
node("d")
`)
	out := filepath.Join(dir, "closures.json")
	if r := fleet(t, labArgs(l, "build", file, "--out", out)...); r.code != 0 {
		t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
	}
	var doc struct {
		Hosts map[string]struct{ Closure string }
	}
	data, _ := os.ReadFile(out)
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}

	// The cache: half of every host's payload paths (leaves, so the
	// cache's part of a closure is closed under references), signed.
	cache := filepath.Join(dir, "cache")
	local(t, "nix-store", "--generate-binary-cache-key", "fleet-e2e-cache", filepath.Join(dir, "sk"), filepath.Join(dir, "pk"))
	pub, _ := os.ReadFile(filepath.Join(dir, "pk"))
	type closure struct {
		paths  []string
		size   map[string]int64
		cached map[string]bool
	}
	cl := map[string]*closure{}
	for name, h := range doc.Hosts {
		c := &closure{size: map[string]int64{}, cached: map[string]bool{}}
		c.paths = strings.Fields(local(t, "nix-store", "--query", "--requisites", h.Closure))
		sizes := strings.Fields(local(t, append([]string{"nix-store", "--query", "--size"}, c.paths...)...))
		var payload []string
		for i, p := range c.paths {
			c.size[p], _ = strconv.ParseInt(sizes[i], 10, 64)
			if strings.Contains(p, "-fleet-payload-") {
				payload = append(payload, p)
			}
		}
		if len(payload) != 4 {
			t.Fatalf("%s: %d payload paths in %s, want 4", name, len(payload), h.Closure)
		}
		for _, p := range payload[:2] {
			c.cached[p] = true
		}
		local(t, append([]string{"nix", "--extra-experimental-features", "nix-command", "copy",
			"--to", "file://" + cache + "?compression=none&secret-key=" + filepath.Join(dir, "sk")}, payload[:2]...)...)
		cl[name] = c
	}

	// GET /HOST/x serves cache/x and logs "HOST x".
	var mu sync.Mutex
	var fetched []string
	files := http.FileServer(http.Dir(cache))
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		mu.Lock()
		fetched = append(fetched, host+" "+rest)
		mu.Unlock()
		r.URL.Path = "/" + rest
		files.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	closed, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close() // d's cache: connections refused
	for _, h := range l.Hosts {
		addr := ln.Addr()
		if h.Name == "d" {
			addr = closed.Addr()
		}
		exec(t, h, fmt.Sprintf("printf 'substituters = http://%s/%s\\ntrusted-public-keys = %s\\n' >>/etc/nix/nix.conf",
			addr, h.Name, strings.TrimSpace(string(pub))))
	}

	// The plan says which pushes substitute.
	for _, tc := range []struct {
		args []string
		want map[string]bool
	}{
		{[]string{"--on", "a,b"}, map[string]bool{"a": true, "b": false}},
		{[]string{"--on", "c,d", "--substitute-on-destination"}, map[string]bool{"c": true, "d": true}},
	} {
		r := fleet(t, append([]string{"plan", "--ssh-config", l.SSHConfig, "--closures", out}, append(tc.args, file)...)...)
		for name, want := range tc.want {
			var line string
			for _, l := range strings.Split(r.stdout, "\n") {
				if f := strings.Fields(l); len(f) > 2 && f[1] == name && f[2] == "push" {
					line = l
				}
			}
			if strings.Contains(line, "(substitute)") != want {
				t.Errorf("plan %s: %s's push %q, want (substitute) %v", tc.args, name, line, want)
			}
		}
	}

	run := func(args ...string) map[string]pushResult {
		t.Helper()
		r := fleet(t, append([]string{"run", "--json", "--ssh-config", l.SSHConfig, "--closures", out}, append(args, file)...)...)
		if r.code != 0 {
			t.Fatalf("run %s: exit %d\n%s", args, r.code, r.stderr)
		}
		return pushResults(events(t, r.stdout))
	}
	results := run("--on", "a,b")
	for name, res := range run("--on", "c,d", "--substitute-on-destination") {
		results[name] = res
	}

	log := map[string]map[string]bool{} // host -> files fetched
	mu.Lock()
	for _, f := range fetched {
		host, file, _ := strings.Cut(f, " ")
		if log[host] == nil {
			log[host] = map[string]bool{}
		}
		log[host][file] = true
	}
	mu.Unlock()
	for name, c := range cl {
		h := l.Host(name)
		substitutes := name == "a" || name == "c" // d's cache is unreachable
		want := pushResult{Paths: len(c.paths)}
		for _, p := range c.paths {
			if !substitutes || !c.cached[p] {
				want.Missing++
				want.Bytes += c.size[p]
			}
		}
		if results[name] != want {
			t.Errorf("%s: push %+v, want %+v (substitute %v)", name, results[name], want, substitutes)
		}
		t.Logf("%s: closure %d paths; push sent %d paths, %d bytes (substitute %v)", name, len(c.paths), results[name].Missing, results[name].Bytes, substitutes)
		for p := range c.cached {
			hash := strings.TrimPrefix(p, "/nix/store/")[:32]
			if got := log[name][hash+".narinfo"]; got != substitutes {
				t.Errorf("%s fetched %s.narinfo: %v, want %v", name, hash, got, substitutes)
			}
		}
		if !substitutes && len(log[name]) > 0 {
			t.Errorf("%s, without substitute, asked the cache for %v", name, log[name])
		}
		for _, p := range c.paths {
			exec(t, h, "nix-store --verify-path "+p)
		}
		if got := current(t, h); got != doc.Hosts[name].Closure {
			t.Errorf("%s runs %s, want %s", name, got, doc.Hosts[name].Closure)
		}
		storeIsWhole(t, h)
	}
	var nars int
	for name := range log {
		for f := range log[name] {
			if strings.HasPrefix(f, "nar/") {
				nars++
			}
		}
	}
	if nars != 4 { // a's and c's two cached paths
		t.Errorf("the cache served %d NARs, want 4: %v", nars, log)
	}
}
