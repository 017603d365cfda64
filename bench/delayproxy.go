// A userspace TCP delay proxy: the WAN of the WAN benchmark (wan.go). This
// machine has no netem, so latency is added here, between the deployer's
// SSH clients and each lab host's sshd: one proxy per host, listening on a
// 127.0.0.0/8 address of its own in the lab's network namespace.
//
// Every chunk read from one side is stamped with the time it may arrive
// (read time + RTT/2) and queued; a writer per direction delivers the queue
// in order, each chunk at its time. So latency is added without cutting
// bandwidth: chunks in flight overlap, as on a long link, instead of one
// sleep per read serialising the stream (which would cap throughput at
// chunk size / delay). A new connection costs one extra RTT, the TCP
// handshake a real link has: the host's side is dialled at accept + 1.5 RTT
// (when the handshake's last ACK would reach it) and the client's first
// bytes are delivered no earlier than that.
//
// The proxy counts what crosses it: connections, bytes each way, and
// round trips: one per connection for the TCP handshake, plus the turns
// of the conversation — a chunk from the deployer's side that follows data
// from the host's side (the first chunk of a connection counts too). A
// request/response exchange is one turn; data streamed one way is one turn
// however long it is. Pipelined traffic in both directions at once makes
// this an estimate, not an exact count.

package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// delayQueueLen bounds the chunks in flight per direction (each ≤
// delayChunk bytes): when the writer falls behind, the reader stops
// reading and TCP's own flow control pushes back on the sender.
const (
	delayQueueLen = 512
	delayChunk    = 64 << 10
)

// delayProxy forwards every connection to its listener to upstream, both
// directions delayed by rtt/2.
type delayProxy struct {
	ln       net.Listener
	upstream string
	rtt      time.Duration

	conns, roundTrips, bytesUp, bytesDown atomic.Int64

	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// proxyStats are the counters of a proxy (or their difference).
type proxyStats struct {
	conns, roundTrips, bytesUp, bytesDown int64
}

func (s proxyStats) sub(t proxyStats) proxyStats {
	return proxyStats{s.conns - t.conns, s.roundTrips - t.roundTrips, s.bytesUp - t.bytesUp, s.bytesDown - t.bytesDown}
}

func (s proxyStats) add(t proxyStats) proxyStats {
	return proxyStats{s.conns + t.conns, s.roundTrips + t.roundTrips, s.bytesUp + t.bytesUp, s.bytesDown + t.bytesDown}
}

// listenDelayProxy listens on addr ("127.77.0.2:22") and forwards to
// upstream with the given round-trip time.
func listenDelayProxy(addr, upstream string, rtt time.Duration) (*delayProxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &delayProxy{ln: ln, upstream: upstream, rtt: rtt, open: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *delayProxy) Addr() *net.TCPAddr { return p.ln.Addr().(*net.TCPAddr) }

func (p *delayProxy) Stats() proxyStats {
	return proxyStats{p.conns.Load(), p.roundTrips.Load(), p.bytesUp.Load(), p.bytesDown.Load()}
}

// Close stops listening, cuts every open connection and returns once all
// of the proxy's goroutines are gone.
func (p *delayProxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.open {
		c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// track registers c to be cut by Close; false if the proxy is closed.
func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.open[c] = struct{}{}
	return true
}

func (p *delayProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.open, c)
	p.mu.Unlock()
	c.Close()
}

func (p *delayProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.conns.Add(1)
		p.roundTrips.Add(1) // the handshake
		p.wg.Add(1)
		go p.handle(c)
	}
}

// chunk is one read, due at its destination at time at; eof marks the
// end of the direction (half-close).
type chunk struct {
	data []byte
	at   time.Time
	eof  bool
}

// Directions of the last chunk read on a connection, for counting turns.
const (
	dirDown int32 = iota // host to deployer (the initial state)
	dirUp                // deployer to host
)

// link is one proxied connection.
type link struct {
	p        *delayProxy
	last     atomic.Int32 // dirUp or dirDown
	done     chan struct{}
	stopOnce sync.Once
}

// stop cuts the connection: both sockets closed, readers and writers
// unblocked.
func (l *link) stop() { l.stopOnce.Do(func() { close(l.done) }) }

func (p *delayProxy) handle(client net.Conn) {
	defer p.wg.Done()
	t0 := time.Now()
	if !p.track(client) {
		return
	}
	l := &link{p: p, done: make(chan struct{})}
	var server net.Conn
	var pumps sync.WaitGroup
	defer func() {
		l.stop()
		client.Close()
		if server != nil {
			server.Close()
		}
		pumps.Wait()
		p.untrack(client)
		if server != nil {
			p.untrack(server)
		}
	}()
	half := p.rtt / 2
	// The handshake: the client may have sent already, but nothing
	// arrives before accept + 1.5 RTT.
	connected := t0.Add(p.rtt + half)
	up := make(chan chunk, delayQueueLen)
	pumps.Add(1)
	go func() { defer pumps.Done(); l.read(client, up, dirUp, connected.Add(-half)) }()
	if !l.wait(connected) {
		return
	}
	s, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	if !p.track(s) {
		return
	}
	server = s
	down := make(chan chunk, delayQueueLen)
	var writers sync.WaitGroup
	writers.Add(2)
	pumps.Add(4)
	go func() { defer pumps.Done(); l.read(server, down, dirDown, time.Time{}) }()
	go func() { defer pumps.Done(); defer writers.Done(); l.write(server, up) }()
	go func() { defer pumps.Done(); defer writers.Done(); l.write(client, down) }()
	go func() { defer pumps.Done(); writers.Wait(); l.stop() }()
	<-l.done
}

// wait waits until t; false if the link was stopped first.
func (l *link) wait(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-l.done:
		return false
	}
}

// read reads src into q, each chunk stamped with its arrival time (read
// time, or notBefore if later, + RTT/2), and counts turns and bytes.
func (l *link) read(src net.Conn, q chan<- chunk, dir int32, notBefore time.Time) {
	defer close(q)
	buf := make([]byte, delayChunk)
	half := l.p.rtt / 2
	for {
		n, err := src.Read(buf)
		now := time.Now()
		if now.Before(notBefore) {
			now = notBefore
		}
		if n > 0 {
			if dir == dirUp {
				l.p.bytesUp.Add(int64(n))
				if l.last.Swap(dirUp) != dirUp {
					l.p.roundTrips.Add(1)
				}
			} else {
				l.p.bytesDown.Add(int64(n))
				l.last.Store(dirDown)
			}
			c := chunk{data: append([]byte(nil), buf[:n]...), at: now.Add(half)}
			select {
			case q <- c:
			case <-l.done:
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				l.stop() // reset or cut: no orderly end to pass on
				return
			}
			select {
			case q <- chunk{at: now.Add(half), eof: true}:
			case <-l.done:
			}
			return
		}
	}
}

// write delivers q to dst, every chunk at its time; the end of q is passed
// on as a half-close.
func (l *link) write(dst net.Conn, q <-chan chunk) {
	for c := range q {
		if !l.wait(c.at) {
			return
		}
		if c.eof {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
		if _, err := dst.Write(c.data); err != nil {
			l.stop()
			return
		}
	}
}
