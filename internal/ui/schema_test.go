package ui_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/cli"
	"github.com/fleet-deploy/fleet/internal/ui"
	"github.com/fleet-deploy/fleet/runtime"
)

// schema is a validator for the part of JSON Schema (2020-12) that
// docs/events.schema.json uses. It refuses a keyword it does not know,
// so that the schema cannot say more than what is checked.
type schema struct {
	root map[string]any
}

var annotations = map[string]bool{"$schema": true, "$id": true, "title": true, "description": true, "$comment": true, "$defs": true}

func loadSchema(t *testing.T) *schema {
	t.Helper()
	b, err := os.ReadFile("../../docs/events.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("events.schema.json: %v", err)
	}
	return &schema{root: root}
}

// validate returns the ways v breaks the schema s, at path.
func (sc *schema) validate(s any, v any, path string) []string {
	sch, ok := s.(map[string]any)
	if !ok {
		if b, isBool := s.(bool); isBool {
			if b {
				return nil
			}
			return []string{path + ": not allowed"}
		}
		return []string{path + ": bad schema"}
	}
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, a...)) }
	obj, isObj := v.(map[string]any)
	keys := make([]string, 0, len(sch))
	for k := range sch {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kv := sch[k]
		switch k {
		case "$ref":
			ref, _ := kv.(string)
			name, ok := strings.CutPrefix(ref, "#/$defs/")
			defs, _ := sc.root["$defs"].(map[string]any)
			if !ok || defs[name] == nil {
				fail("unknown $ref %q", ref)
				continue
			}
			errs = append(errs, sc.validate(defs[name], v, path)...)
		case "oneOf":
			n := 0
			var why []string
			for _, alt := range kv.([]any) {
				if e := sc.validate(alt, v, path); len(e) == 0 {
					n++
				} else {
					why = append(why, e...)
				}
			}
			if n != 1 {
				fail("matches %d of oneOf, not 1: %s", n, strings.Join(why, "; "))
			}
		case "type":
			if !hasType(v, kv.(string)) {
				fail("%v is not of type %s", v, kv)
			}
		case "const":
			if !equal(v, kv) {
				fail("%v is not %v", v, kv)
			}
		case "enum":
			found := false
			for _, e := range kv.([]any) {
				found = found || equal(v, e)
			}
			if !found {
				fail("%v is not one of %v", v, kv)
			}
		case "minimum":
			if n, ok := v.(json.Number); ok {
				x, _ := n.Float64()
				m, _ := kv.(json.Number).Float64()
				if x < m {
					fail("%v < %v", x, m)
				}
			}
		case "minLength":
			if s, ok := v.(string); ok {
				m, _ := kv.(json.Number).Int64()
				if int64(len([]rune(s))) < m {
					fail("%q is shorter than %d", s, m)
				}
			}
		case "format":
			if s, ok := v.(string); ok && kv == "date-time" {
				if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
					fail("%q is not a date-time", s)
				}
			}
		case "required":
			if isObj {
				for _, r := range kv.([]any) {
					if _, ok := obj[r.(string)]; !ok {
						fail("lacks %q", r)
					}
				}
			}
		case "properties":
			if isObj {
				props := kv.(map[string]any)
				for name, pv := range obj {
					if ps, ok := props[name]; ok {
						errs = append(errs, sc.validate(ps, pv, path+"."+name)...)
					}
				}
			}
		case "additionalProperties":
			if isObj {
				props, _ := sch["properties"].(map[string]any)
				for name, pv := range obj {
					if _, ok := props[name]; !ok {
						errs = append(errs, sc.validate(kv, pv, path+"."+name)...)
					}
				}
			}
		case "items":
			if arr, ok := v.([]any); ok {
				for i, x := range arr {
					errs = append(errs, sc.validate(kv, x, fmt.Sprintf("%s[%d]", path, i))...)
				}
			}
		default:
			if !annotations[k] {
				fail("schema keyword %q is not supported by this validator", k)
			}
		}
	}
	return errs
}

func hasType(v any, t string) bool {
	switch x := v.(type) {
	case map[string]any:
		return t == "object"
	case []any:
		return t == "array"
	case string:
		return t == "string"
	case bool:
		return t == "boolean"
	case nil:
		return t == "null"
	case json.Number:
		if t == "number" {
			return true
		}
		_, err := x.Int64()
		return t == "integer" && err == nil
	}
	return false
}

func equal(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// check validates every line of out; it returns the events by kind.
func (sc *schema) check(t *testing.T, out string) map[string]int {
	t.Helper()
	kinds := map[string]int{}
	sc2 := bufio.NewScanner(strings.NewReader(out))
	sc2.Buffer(nil, 1<<20)
	n := 0
	for sc2.Scan() {
		n++
		var v any
		dec := json.NewDecoder(bytes.NewReader(sc2.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Errorf("line %d is not JSON: %v\n%s", n, err, sc2.Text())
			continue
		}
		if errs := sc.validate(sc.root, v, "event"); len(errs) > 0 {
			t.Errorf("line %d breaks the schema:\n  %s\n%s", n, strings.Join(errs, "\n  "), sc2.Text())
		}
		if m, ok := v.(map[string]any); ok {
			kinds[fmt.Sprint(m["event"])]++
		}
	}
	if n == 0 {
		t.Errorf("no events")
	}
	return kinds
}

// TestSchemaValidator: the validator does reject what the schema
// forbids (else the tests below would prove nothing).
func TestSchemaValidator(t *testing.T) {
	sc := loadSchema(t)
	good := `{"v":1,"event":"log","time":"2026-03-14T14:02:03Z","source":"script","message":"hi"}`
	for _, bad := range []string{
		`{"event":"log","time":"2026-03-14T14:02:03Z","source":"script","message":"hi"}`,
		`{"v":2,"event":"log","time":"2026-03-14T14:02:03Z","source":"script","message":"hi"}`,
		`{"v":1,"event":"log","time":"yesterday","source":"script","message":"hi"}`,
		`{"v":1,"event":"log","time":"2026-03-14T14:02:03Z","source":"shell","message":"hi"}`,
		`{"v":1,"event":"log","time":"2026-03-14T14:02:03Z","source":"script","message":"hi","extra":1}`,
		`{"v":1,"event":"logs","time":"2026-03-14T14:02:03Z","source":"script","message":"hi"}`,
		`{"v":1,"event":"step_end","time":"2026-03-14T14:02:03Z","id":0,"step":{"host":"a","action":"push"},"result":"ok","elapsed_ms":1}`,
		`{"v":1,"event":"step_end","time":"2026-03-14T14:02:03Z","id":1,"step":{"host":"a"},"result":"ok","elapsed_ms":1}`,
		`{"v":1,"event":"step_end","time":"2026-03-14T14:02:03Z","id":1,"step":{"host":"a","action":"push"},"result":"ok","elapsed_ms":1.5}`,
	} {
		var v any
		dec := json.NewDecoder(strings.NewReader(bad))
		dec.UseNumber()
		dec.Decode(&v)
		if errs := sc.validate(sc.root, v, "event"); len(errs) == 0 {
			t.Errorf("accepted %s", bad)
		}
	}
	sc.check(t, good)
}

// TestSchemaRun validates every event of runs: one where a host fails,
// and one with every kind of event (progress, a step of the whole run,
// Nix output and step output with -v, an interrupt).
func TestSchemaRun(t *testing.T) {
	sc := loadSchema(t)
	c := newClock()
	var out bytes.Buffer
	deploy(t, ui.Options{Out: &out, Mode: ui.JSON, Verbose: true, Now: c.Now}, &fakeExec{clock: c, fail: map[string]bool{"b": true}})
	kinds := sc.check(t, out.String())
	for _, k := range []string{"run_start", "step_start", "step_progress", "step_end", "log", "summary"} {
		if kinds[k] == 0 {
			t.Errorf("the run had no %s event", k)
		}
	}

	out.Reset()
	_, sel := load(t)
	r, err := ui.New(ui.Options{Out: &out, Mode: ui.JSON, Verbose: true, Goal: "boot", Parallel: 3}, sel)
	if err != nil {
		t.Fatal(err)
	}
	build := &runtime.Step{Host: "a", Action: "build", System: "x86_64-linux"}
	r.StepStarted(build)
	r.NixLog("building '/nix/store/x.drv'...")
	r.StepFinished(build, &runtime.HostError{Host: "a, b", Step: "build", Err: errors.New("builder failed"), Log: "a\nb\n"}, time.Second)
	sleep := &runtime.Step{Action: "sleep", Seconds: 10}
	r.StepStarted(sleep)
	r.StepFinished(sleep, nil, 10*time.Second)
	run := &runtime.Step{Host: "c", Action: "run", Argv: []string{"uptime"}}
	r.StepStarted(run)
	r.StepLog(run, " 14:02:03 up 3 days")
	r.StepProgress(run, 3, 0, "lines")
	run.Result = &runtime.StepResult{ExitCode: 0}
	r.StepFinished(run, nil, time.Second)
	r.Log("", "a message of the run")
	r.StepFinished(&runtime.Step{Host: "d", Action: "check"}, errors.New("unhealthy"), time.Second)
	r.Finish(errors.New("interrupted"), true)
	kinds = sc.check(t, out.String())
	if kinds["log"] != 3 || kinds["summary"] != 1 {
		t.Errorf("events %v:\n%s", kinds, out.String())
	}
	if !strings.Contains(out.String(), `"result":"interrupted"`) {
		t.Errorf("no interrupted summary:\n%s", out.String())
	}
}

// byHost groups "host action" lines by host, keeping their order.
func byHost(lines []string) map[string][]string {
	out := map[string][]string{}
	for _, l := range lines {
		host, _, _ := strings.Cut(l, " ")
		out[host] = append(out[host], l)
	}
	return out
}

// TestSchemaPlan validates the events of `fleet plan --events`, and
// checks that they are a run's: the same steps as the plan, in the
// same order.
func TestSchemaPlan(t *testing.T) {
	sc := loadSchema(t)
	for _, file := range []string{fleetFile, "../../examples/homelab/fleet.star", "../../examples/canary/fleet.star"} {
		t.Run(filepath.Base(filepath.Dir(file)), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := cli.Main([]string{"fleet", "plan", "--events", file}, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			kinds := sc.check(t, out.String())
			if kinds["run_start"] != 1 || kinds["summary"] != 1 || kinds["step_start"] == 0 || kinds["step_start"] != kinds["step_end"] {
				t.Errorf("events %v", kinds)
			}
			var plain, errb2 bytes.Buffer
			if code := cli.Main([]string{"fleet", "plan", "--json", file}, &plain, &errb2); code != 0 {
				t.Fatalf("plan --json: exit %d: %s", code, errb2.String())
			}
			var plan struct {
				Steps []struct{ Host, Action string }
			}
			if err := json.Unmarshal(plain.Bytes(), &plan); err != nil {
				t.Fatal(err)
			}
			var want, got []string
			for _, s := range plan.Steps {
				want = append(want, s.Host+" "+s.Action)
			}
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				var e struct {
					Event string
					Step  struct{ Host, Action string }
				}
				json.Unmarshal([]byte(line), &e)
				if e.Event == "step_start" {
					got = append(got, e.Step.Host+" "+e.Step.Action)
				}
			}
			// Hosts are planned side by side, so events interleave them
			// as scheduled; each host's steps keep the program's order.
			if !reflect.DeepEqual(byHost(want), byHost(got)) {
				t.Errorf("plan --events steps %v, plan --json steps %v", got, want)
			}
			if regexp.MustCompile(`"dry_run":true`).FindString(out.String()) == "" {
				t.Errorf("run_start does not say dry_run")
			}
		})
	}
}
