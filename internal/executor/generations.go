package executor

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fleet-deploy/fleet/runtime"
)

// Generation is one generation of a host's system profile (fleet
// generations).
type Generation struct {
	Number  int       `json:"number"`
	Date    time.Time `json:"date"`    // when the generation was made
	Closure string    `json:"closure"` // the system it points at
	Current bool      `json:"current"` // the profile's current generation: what the next boot starts
	Running bool      `json:"running"` // /run/current-system is its system (one generation: the current one if it is, else the newest)
}

// generationsScript prints, in one session and without root, what nix-env
// --list-generations reads: for each system-N-link of the system
// profile its number, its time (the link's mtime, which nix-env prints
// as the generation's date) and the system it points at (readlink -f);
// then the profile's own link and /run/current-system. A constant:
// nothing is spliced into it.
const generationsScript = `cd /nix/var/nix/profiles 2>/dev/null || exit 0
for l in system-*-link; do
  [ -L "$l" ] || continue
  printf 'gen %s %s %s\n' "$l" "$(stat -c %Y "$l")" "$(readlink -f "$l")"
done
printf 'profile %s\n' "$(readlink system)"
printf 'running %s\n' "$(readlink /run/current-system)"`

// Generations lists h's system generations, oldest first.
func (e *Executor) Generations(ctx context.Context, h *runtime.Host) ([]Generation, error) {
	m, err := e.machine(h)
	if err != nil {
		return nil, err
	}
	out, err := m.run(ctx, asUser, nil, "sh", "-c", generationsScript)
	if err != nil {
		return nil, fmt.Errorf("listing the system generations: %w", err)
	}
	return parseGenerations(out), nil
}

func parseGenerations(out string) []Generation {
	var gens []Generation
	profile, running := "", ""
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 4 && f[0] == "gen":
			g := genRE.FindStringSubmatch(f[1])
			if g == nil {
				continue
			}
			n, _ := strconv.Atoi(g[1])
			secs, _ := strconv.ParseInt(f[2], 10, 64)
			gens = append(gens, Generation{Number: n, Date: time.Unix(secs, 0).UTC(), Closure: f[3]})
		case len(f) == 2 && f[0] == "profile":
			profile = f[1]
		case len(f) == 2 && f[0] == "running":
			running = f[1]
		}
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i].Number < gens[j].Number })
	runs := -1 // the generation marked running: the current one if it runs, else the newest that does
	for i := range gens {
		gens[i].Current = profile == fmt.Sprintf("system-%d-link", gens[i].Number)
		if running != "" && gens[i].Closure == running && (runs < 0 || !gens[runs].Current) {
			runs = i
		}
	}
	if runs >= 0 {
		gens[runs].Running = true
	}
	return gens
}

// RollbackTo switches h to the system of its generation gen (fleet
// rollback --to, rollback(h, to = gen)) in one activation session, as
// Rollback does: that system becomes the profile's newest generation
// (unless it is the current one already) and is switched to; a switch
// that fails sets the profile back.
func (e *Executor) RollbackTo(ctx context.Context, h *runtime.Host, gen int, log runtime.LogFunc) (*runtime.ActivateResult, error) {
	m, err := e.machine(h)
	if err != nil {
		return nil, hostErr(h, "rollback", err)
	}
	target, err := m.readlink(ctx, "-f", fmt.Sprintf("%s-%d-link", systemProfile, gen))
	if err != nil || !isStorePath(target) {
		return nil, m.stepErr("rollback", fmt.Errorf("the host has no system generation %d (fleet generations lists them)", gen), "")
	}
	r, err := m.session(ctx, "rollback", sessionArgs{dir: m.stateDir("-rollback"), closure: target, goal: "switch",
		unit: m.unitName("fleet-rollback-"), log: log})
	if err != nil {
		return nil, err
	}
	m.record(r)
	return m.judge("rollback", r)
}
