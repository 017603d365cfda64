package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/fleet-deploy/fleet/internal/remote"
	"github.com/fleet-deploy/fleet/internal/tail"
	"github.com/fleet-deploy/fleet/runtime"
)

// Check makes one attempt of a health check.
func (e *Executor) Check(ctx context.Context, h *runtime.Host, c *runtime.CheckSpec) error {
	switch {
	case c.HTTP != "":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.HTTP, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("%s: %s %s", c.HTTP, resp.Status, strings.TrimSpace(string(body)))
		}
		return nil
	case len(c.Cmd) > 0:
		return e.checkOn(ctx, h, c.Cmd)
	case len(c.Systemd) > 0:
		return e.checkOn(ctx, h, append([]string{"systemctl", "is-active", "--"}, c.Systemd...))
	}
	return errors.New("empty check")
}

// checkOn runs a check's command on h: healthy when it exits 0.
func (e *Executor) checkOn(ctx context.Context, h *runtime.Host, argv []string) error {
	m, err := e.machine(h)
	if err != nil {
		return err
	}
	return checkExit(m.run(ctx, asUser, nil, argv...))
}

func checkExit(out string, err error) error {
	var ee *remote.ExitError
	if errors.As(err, &ee) {
		msg := strings.TrimSpace(tail.Lines(ee.Stderr+"\n"+out, 3))
		return fmt.Errorf("exit status %d: %s", ee.Code, msg)
	}
	return err
}
