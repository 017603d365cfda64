package main

import (
	"bytes"
	"io"
	"math/rand"
	"net"
	"sort"
	"testing"
	"time"
)

// echoServer echoes every connection until EOF, then half-closes; it
// returns its address and a channel that gets one value per connection
// that ended cleanly (EOF seen, all echoed).
func echoServer(t *testing.T) (string, <-chan int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan int64, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				n, err := io.Copy(c, c)
				if err == nil {
					c.(*net.TCPConn).CloseWrite()
					done <- n
				}
			}()
		}
	}()
	return ln.Addr().String(), done
}

func startProxy(t *testing.T, upstream string, rtt time.Duration) *delayProxy {
	t.Helper()
	p, err := listenDelayProxy("127.0.0.1:0", upstream, rtt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dialProxy(t *testing.T, p *delayProxy) *net.TCPConn {
	t.Helper()
	c, err := net.DialTCP("tcp", nil, p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pingPong writes msg and reads its echo, returning the time it took.
func pingPong(t *testing.T, c net.Conn, msg []byte) time.Duration {
	t.Helper()
	t0 := time.Now()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo %q, want %q", got, msg)
	}
	return time.Since(t0)
}

// Every exchange takes one RTT, the first one (carrying the TCP
// handshake) two; the proxy counts one round trip per exchange and one
// for the handshake, and the bytes both ways.
func TestDelayProxyDelay(t *testing.T) {
	const k = 8
	for _, rtt := range []time.Duration{20 * time.Millisecond, 80 * time.Millisecond} {
		t.Run(rtt.String(), func(t *testing.T) {
			addr, done := echoServer(t)
			p := startProxy(t, addr, rtt)
			c := dialProxy(t, p)
			msg := []byte("ping")
			if first := pingPong(t, c, msg); first < 2*rtt {
				t.Errorf("first exchange (with the handshake) took %v, want ≥ %v", first, 2*rtt)
			}
			var ds []time.Duration
			for i := 1; i < k; i++ {
				ds = append(ds, pingPong(t, c, msg))
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			// Lower bound: exact (a chunk is never early). Upper: the
			// median, so that one hiccup of a loaded machine does not fail.
			if ds[0] < rtt {
				t.Errorf("fastest exchange %v, want ≥ RTT %v", ds[0], rtt)
			}
			if med, tol := ds[len(ds)/2], 25*time.Millisecond; med > rtt+tol {
				t.Errorf("median exchange %v, want ≤ RTT + %v = %v (all: %v)", med, tol, rtt+tol, ds)
			}
			c.CloseWrite()
			if _, err := io.ReadAll(c); err != nil {
				t.Fatal(err)
			}
			if n := <-done; n != k*int64(len(msg)) {
				t.Errorf("server echoed %d bytes, want %d", n, k*len(msg))
			}
			want := proxyStats{conns: 1, roundTrips: 1 + k, bytesUp: k * int64(len(msg)), bytesDown: k * int64(len(msg))}
			if got := p.Stats(); got != want {
				t.Errorf("stats %+v, want %+v", got, want)
			}
		})
	}
}

// Both directions at once, random write sizes: the bytes arrive in order,
// and the client's half-close reaches the server and comes back.
func TestDelayProxyOrder(t *testing.T) {
	addr, done := echoServer(t)
	p := startProxy(t, addr, 10*time.Millisecond)
	c := dialProxy(t, p)
	data := make([]byte, 4<<20)
	rng := rand.New(rand.NewSource(1))
	rng.Read(data)
	errc := make(chan error, 1)
	go func() {
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+rng.Intn(100<<10))
			if _, err := c.Write(rest[:n]); err != nil {
				errc <- err
				return
			}
			rest = rest[n:]
		}
		errc <- c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echoed stream differs (%d bytes back, %d sent)", len(got), len(data))
	}
	if n := <-done; n != int64(len(data)) {
		t.Errorf("server saw %d bytes, want %d", n, len(data))
	}
}

// A delay does not cut throughput: 32 MiB through a 100 ms RTT would take
// ≥ 25 s if every 64 KiB read waited for its delay in turn.
func TestDelayProxyThroughput(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 32 << 20
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	const rtt = 100 * time.Millisecond
	p := startProxy(t, ln.Addr().String(), rtt)
	c := dialProxy(t, p)
	t0 := time.Now()
	if _, err := io.CopyN(c, zeros{}, size); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	if n := <-got; n != size {
		t.Fatalf("server got %d bytes, want %d", n, size)
	}
	el := time.Since(t0)
	t.Logf("32 MiB through a %v RTT proxy in %v (%.0f MB/s)", rtt, el, size/1e6/el.Seconds())
	if limit := 2*rtt + 3*time.Second; el > limit {
		t.Errorf("took %v, want < %v: the delay serialises the stream", el, limit)
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// Close cuts open connections (the client sees the end) and returns once
// the proxy's goroutines are done; an unreachable upstream closes the
// client's connection.
func TestDelayProxyClose(t *testing.T) {
	addr, _ := echoServer(t)
	p, err := listenDelayProxy("127.0.0.1:0", addr, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c := dialProxy(t, p)
	pingPong(t, c, []byte("x"))
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("read after Close succeeded")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("connection left open after Close")
	}
	if _, err := net.DialTCP("tcp", nil, p.Addr()); err == nil {
		t.Error("proxy still accepts after Close")
	}

	// Nothing listens upstream.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	p2 := startProxy(t, dead, 10*time.Millisecond)
	c2 := dialProxy(t, p2)
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c2.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
		t.Errorf("unreachable upstream: read %d, %v; want the connection closed", n, err)
	}
}

func isReset(err error) bool {
	ne, ok := err.(net.Error)
	return err != nil && !(ok && ne.Timeout())
}
