package lab

// This file runs a host's nix-daemon. As on NixOS, root uses a host's store
// directly and every other user (nixos, ops) goes through the daemon, so a
// deploy that forgets sudo fails in the lab as it would on a real host.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

const nixDaemonSocket = "/nix/var/nix/daemon-socket/socket"

// startNixDaemon starts nix-daemon inside the host (it creates
// /nix/var/nix/daemon-socket/socket). h.mu is held.
func (h *Host) startNixDaemon(b bins) error {
	logf, err := os.OpenFile(h.Root+"/nix-daemon.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	os.Remove(h.Root + nixDaemonSocket)
	cmd := b.command(context.Background(), h.holder.Process.Pid, b.nixDaemon)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting nix-daemon: %w", err)
	}
	go cmd.Wait()
	h.daemon = cmd
	return nil
}

// waitNixDaemon waits until the daemon's socket exists, for at most 10s.
func (h *Host) waitNixDaemon(ctx context.Context) error {
	if err := waitFile(ctx, h.Root+nixDaemonSocket, 10*time.Second); err != nil {
		log, _ := os.ReadFile(h.Root + "/nix-daemon.log")
		return fmt.Errorf("nix-daemon: %w; log: %s", err, strings.TrimSpace(string(log)))
	}
	return nil
}

func waitFile(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}
