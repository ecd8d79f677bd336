package interchange

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parsl-go/parsl/internal/certs"
	"github.com/parsl-go/parsl/internal/wire"
)

// Exit codes of a standalone interchange.
const (
	// ExitOK: the driver shut it down, or it gave the driver up after
	// the grace period.
	ExitOK = 0
	// ExitError: listening or serving failed.
	ExitError = 1
	// ExitConfig: the configuration, or a file it names, is unusable.
	ExitConfig = 2
)

// Main serves PARSL_ROLE=interchange: it reads the configuration named by
// $PARSL_INTERCHANGE_CONFIG and runs until the driver shuts it down.
func Main() int {
	path := os.Getenv(wire.InterchangeConfigEnv)
	if path == "" {
		fmt.Fprintf(os.Stderr, "parsl interchange: %s is not set; it must name the interchange configuration file\n", wire.InterchangeConfigEnv)
		return ExitConfig
	}
	cfg, err := wire.ReadInterchangeConfig(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return ExitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if cfg.ExitWithDriver {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		// Not waited for: it blocks reading stdin until the driver goes,
		// and this process exits as soon as RunStandalone returns.
		go watchDriver(os.Stdin, cancel, os.Stderr)
	}
	return RunStandalone(ctx, cfg, os.Stderr)
}

// ErrDriverGone is the cause of the stop of an interchange started with
// ExitWithDriver whose driver process ended.
var ErrDriverGone = errors.New("the driver that started this interchange is gone")

// driverGoneExit bounds the orderly stop of an orphaned interchange
// (finish waits at most about 2 s for pools): nobody else would ever stop
// one that hangs.
const driverGoneExit = 10 * time.Second

// watchDriver reads the interchange's stdin, the read end of a pipe whose
// write end only the driver holds (close-on-exec keeps it from every
// other child), until it ends: the kernel closes the write end when the
// driver exits however it exits, kill -9 included. This works on every
// Unix and fires once per process exit, unlike Linux's parent-death
// signal, which fires when the thread that started the child exits and
// does not exist on darwin (the driver sets it too, as a backstop).
func watchDriver(stdin io.Reader, cancel context.CancelCauseFunc, stderr io.Writer) {
	var buf [64]byte
	for {
		if _, err := stdin.Read(buf[:]); err != nil {
			break
		}
	}
	cancel(ErrDriverGone)
	time.Sleep(driverGoneExit)
	fmt.Fprintf(stderr, "parsl interchange: %v and the orderly stop did not end within %s; exiting\n", ErrDriverGone, driverGoneExit)
	os.Exit(ExitError)
}

// Wire returns m as sent to a driver.
func (m ManagerInfo) Wire() wire.ManagerState {
	return wire.ManagerState{ID: m.ID, Name: m.Name, Hostname: m.Hostname, BlockID: m.BlockID, Workers: m.Workers,
		Prefetch: m.Prefetch, Generic: m.Generic, InFlight: m.InFlight, Draining: m.Draining,
		IdleSince: unixNano(m.IdleSince), Deadline: unixNano(m.Deadline)}
}

// InfoFromWire is the inverse of ManagerInfo.Wire.
func InfoFromWire(s wire.ManagerState) ManagerInfo {
	return ManagerInfo{ID: s.ID, Name: s.Name, Hostname: s.Hostname, BlockID: s.BlockID, Workers: s.Workers,
		Prefetch: s.Prefetch, Generic: s.Generic, InFlight: s.InFlight, Draining: s.Draining,
		IdleSince: fromUnixNano(s.IdleSince), Deadline: fromUnixNano(s.Deadline)}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// ReadSecret reads a hex secret file.
func ReadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the run secret: %w", err)
	}
	s, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(s) == 0 {
		return nil, fmt.Errorf("the secret file %s does not hold a hex secret", path)
	}
	return s, nil
}

// standalone is a standalone interchange: an Interchange for pools plus
// a listener for one driver at a time.
type standalone struct {
	cfg  wire.InterchangeConfig
	log  *slog.Logger
	ix   *Interchange
	dln  net.Listener
	tls  *tls.Config
	sec  []byte
	quit chan struct{} // closed to stop: shutdown asked, or grace over
	stop sync.Once
	wg   sync.WaitGroup

	mu      sync.Mutex
	drv     *driverLink    // the connected driver, nil when none
	pending []wire.Deliver // results while no driver is connected
	gone    time.Time      // when the last driver left (or start)
	// nodes holds each connected manager's node description, for a
	// driver that asks for monitoring after the pool joined (or
	// reconnects). Resource samples are not kept: with no driver to take
	// them they are dropped.
	nodes map[string]wire.MonitorFrom
}

// driverLink is the connection to the driver. Writes are serialized by
// wmu; results are flushed at once since the driver waits for them.
type driverLink struct {
	conn net.Conn
	r    *bufio.Reader
	wmu  sync.Mutex
	w    *bufio.Writer
	// monitor: the driver asked for monitoring messages (OpMonitor).
	// Guarded by standalone.mu.
	monitor bool
}

func (d *driverLink) send(t wire.Type, v any, timeout time.Duration) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	// A driver that stops reading must not block the interchange's
	// goroutines (result delivery runs on them) for ever.
	_ = d.conn.SetWriteDeadline(time.Now().Add(timeout))
	if err := wire.WriteFrame(d.w, t, v); err != nil {
		return err
	}
	return d.w.Flush()
}

// RunStandalone runs a standalone interchange until ctx ends, the driver
// shuts it down, or no driver has been connected for DriverGrace. It
// returns an exit code; reasons go to stderr.
func RunStandalone(ctx context.Context, cfg wire.InterchangeConfig, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "interchange")
	if cfg.PoolAddress == "" {
		cfg.PoolAddress = "0.0.0.0:0"
	}
	if cfg.DriverAddress == "" {
		cfg.DriverAddress = "127.0.0.1:0"
	}
	if cfg.HeartbeatPeriod <= 0 {
		cfg.HeartbeatPeriod = 30 * time.Second
	}
	if cfg.HeartbeatThreshold <= 0 {
		cfg.HeartbeatThreshold = 120 * time.Second
	}
	if cfg.DriverGrace <= 0 {
		cfg.DriverGrace = cfg.HeartbeatThreshold
	}
	secret, err := ReadSecret(cfg.SecretFile)
	if err != nil {
		fmt.Fprintln(stderr, "parsl interchange:", err)
		return ExitConfig
	}
	s := &standalone{cfg: cfg, log: log, sec: secret, quit: make(chan struct{}), gone: time.Now(), nodes: map[string]wire.MonitorFrom{}}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			fmt.Fprintf(stderr, "parsl interchange: loading the certificate %s and key %s: %v\n", cfg.CertFile, cfg.KeyFile, err)
			return ExitConfig
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	}
	s.ix, err = New(Options{
		Address: cfg.PoolAddress, TLS: s.tls, Secret: secret,
		Expect:          wire.Expect{BuildID: cfg.BuildID, Digest: cfg.Digest},
		HeartbeatPeriod: cfg.HeartbeatPeriod, HeartbeatThreshold: cfg.HeartbeatThreshold,
		MaxFrame: cfg.MaxFrame, Logger: log,
		Deliver: s.deliver, OnManager: s.onManager, OnRefused: s.onRefused, OnMonitor: s.forwardMonitor,
	})
	if err != nil {
		fmt.Fprintln(stderr, "parsl interchange:", err)
		return ExitError
	}
	s.dln, err = net.Listen("tcp", cfg.DriverAddress)
	if err != nil {
		_ = s.ix.Close()
		fmt.Fprintf(stderr, "parsl interchange: listening for the driver on %s: %v (set driver_address to an interface of this host)\n", cfg.DriverAddress, err)
		return ExitError
	}
	if cfg.AddressFile != "" {
		a := wire.Addresses{Pools: PoolAddresses(s.ix.Addr()), Driver: s.dln.Addr().String(), PID: os.Getpid()}
		if err := wire.WriteAddresses(cfg.AddressFile, a); err != nil {
			_ = s.dln.Close()
			_ = s.ix.Close()
			fmt.Fprintf(stderr, "parsl interchange: writing the address file: %v\n", err)
			return ExitError
		}
	}
	log.Info("interchange: listening", "pools", s.ix.Addr().String(), "driver", s.dln.Addr().String(), "tls", s.tls != nil)
	s.wg.Add(2)
	go s.acceptDrivers()
	go s.monitor()
	select {
	case <-ctx.Done():
		if errors.Is(context.Cause(ctx), ErrDriverGone) {
			log.Warn("interchange: the driver process is gone; telling pools to exit", "err", context.Cause(ctx))
		} else {
			log.Info("interchange: signalled; stopping")
		}
	case <-s.quit:
	}
	s.finish()
	return ExitOK
}

// finish tells pools to exit, closes everything and waits for every
// goroutine.
func (s *standalone) finish() {
	s.halt()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if err := s.ix.Shutdown(sctx); err != nil {
		s.log.Warn("interchange: pools did not leave in time", "err", err)
	}
	cancel()
	_ = s.dln.Close()
	s.mu.Lock()
	d := s.drv
	s.mu.Unlock()
	if d != nil {
		d.conn.Close()
	}
	_ = s.ix.Close()
	s.wg.Wait()
}

func (s *standalone) halt() { s.stop.Do(func() { close(s.quit) }) }

// PoolAddresses lists what pools should dial for listening address a:
// the address itself, or this host's name when listening on every
// interface.
func PoolAddresses(a net.Addr) []string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return []string{a.String()}
	}
	port := strconv.Itoa(ta.Port)
	var out []string
	if h, err := os.Hostname(); err == nil {
		out = append(out, net.JoinHostPort(h, port))
	}
	return append(out, net.JoinHostPort("127.0.0.1", port))
}

func (s *standalone) deliver(rs []wire.Result, from ManagerInfo) {
	// rs is reused by the caller only after we return; the frame is
	// encoded (or the slice copied) before that.
	msg := wire.Deliver{Results: rs, From: from.Wire()}
	s.mu.Lock()
	d := s.drv
	if d == nil {
		msg.Results = append([]wire.Result(nil), rs...)
		s.pending = append(s.pending, msg)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if err := d.send(wire.TDeliver, msg, s.cfg.HeartbeatThreshold); err != nil {
		// The reader notices the broken link; keep the results for a
		// driver that reconnects.
		s.mu.Lock()
		msg.Results = append([]wire.Result(nil), rs...)
		s.pending = append(s.pending, msg)
		s.mu.Unlock()
		d.conn.Close()
	}
}

func (s *standalone) status() wire.Status {
	ms := s.ix.Managers()
	st := wire.Status{Managers: make([]wire.ManagerState, len(ms)), Queued: s.ix.Queued()}
	for i, m := range ms {
		st.Managers[i] = m.Wire()
	}
	return st
}

func (s *standalone) sendStatus(st wire.Status) {
	s.mu.Lock()
	d := s.drv
	s.mu.Unlock()
	if d != nil {
		if err := d.send(wire.TStatus, st, s.cfg.HeartbeatThreshold); err != nil {
			d.conn.Close()
		}
	}
}

// forwardMonitor sends a pool's monitoring message to a driver that asked
// for them, and keeps node descriptions for later drivers.
func (s *standalone) forwardMonitor(m ManagerInfo, msg *wire.Monitor) {
	fwd := wire.MonitorFrom{From: m.Wire(), Monitor: *msg}
	s.mu.Lock()
	if msg.Node != nil {
		s.nodes[m.ID] = wire.MonitorFrom{From: fwd.From, Monitor: wire.Monitor{Node: msg.Node}}
	}
	d := s.drv
	if d != nil && !d.monitor {
		d = nil
	}
	s.mu.Unlock()
	if d == nil {
		return
	}
	if err := d.send(wire.TMonitorFrom, fwd, s.cfg.HeartbeatThreshold); err != nil {
		d.conn.Close() // the driver's reader notices
	}
}

// startMonitor marks d as wanting monitoring messages and sends it the
// node descriptions of the managers connected now.
func (s *standalone) startMonitor(d *driverLink) {
	s.mu.Lock()
	d.monitor = true
	nodes := make([]wire.MonitorFrom, 0, len(s.nodes))
	for _, n := range s.nodes {
		nodes = append(nodes, n)
	}
	s.mu.Unlock()
	for _, n := range nodes {
		if err := d.send(wire.TMonitorFrom, n, s.cfg.HeartbeatThreshold); err != nil {
			d.conn.Close()
			return
		}
	}
}

func (s *standalone) onManager(m ManagerInfo, gone bool, reason string) {
	if gone {
		s.mu.Lock()
		delete(s.nodes, m.ID)
		s.mu.Unlock()
	}
	st := s.status()
	st.Event = &wire.ManagerEvent{Manager: m.Wire(), Gone: gone, Reason: reason}
	s.sendStatus(st)
}

func (s *standalone) onRefused(r Refusal) {
	if r.Auth {
		// A peer without the secret says nothing about the driver's pools
		// (the driver ignores it), and a flood of them must not become a
		// flood of status frames.
		return
	}
	st := s.status()
	st.Refused = &wire.Refusal{Remote: r.Remote, Auth: r.Auth, Manager: r.Manager, Hostname: r.Hostname, BlockID: r.BlockID, Reason: r.Reason}
	s.sendStatus(st)
}

// monitor sends heartbeats and status to the driver, and ends the
// interchange when no driver has been connected for DriverGrace.
func (s *standalone) monitor() {
	defer s.wg.Done()
	t := time.NewTicker(min(s.cfg.HeartbeatPeriod, time.Second))
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		s.mu.Lock()
		d, gone := s.drv, s.gone
		s.mu.Unlock()
		if d == nil {
			if time.Since(gone) > s.cfg.DriverGrace {
				s.log.Warn("interchange: no driver connected for the grace period; telling pools to exit", "grace", s.cfg.DriverGrace)
				s.halt()
				return
			}
			continue
		}
		s.sendStatus(s.status())
	}
}

func (s *standalone) acceptDrivers() {
	defer s.wg.Done()
	for {
		c, err := s.dln.Accept()
		if err != nil {
			select {
			case <-s.quit:
			default:
				s.log.Error("interchange: accepting drivers failed; stopping", "err", err)
				s.halt()
			}
			return
		}
		// The pool address's guard covers this address too: a flood of
		// bad connections costs as much here.
		if s.tls != nil && !s.ix.guard.admit(source(c.RemoteAddr()), time.Now()) {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.serveDriver(c)
	}
}

// serveDriver authenticates a driver and reads its frames until the link
// ends. A new driver replaces the old one: that is the reconnect.
func (s *standalone) serveDriver(c net.Conn) {
	defer s.wg.Done()
	remote := c.RemoteAddr().String()
	src := source(c.RemoteAddr())
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	conn := c
	if s.tls != nil {
		tc := tls.Server(c, s.tls)
		if err := tc.Handshake(); err != nil {
			s.ix.guard.failed(src, "driver address: TLS handshake failed: "+err.Error(), time.Now())
			c.Close()
			return
		}
		conn = tc
	}
	d := &driverLink{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), w: bufio.NewWriterSize(conn, 64<<10)}
	// The driver's build is not checked: only pools run its apps.
	_, err := wire.ServerHandshake(d.r, d.w, s.sec, wire.Expect{Role: wire.RoleDriver}, wire.Welcome{
		HeartbeatPeriod: s.cfg.HeartbeatPeriod, HeartbeatThreshold: s.cfg.HeartbeatThreshold, Monitor: true})
	if err != nil {
		var re *wire.RefusedError
		if errors.As(err, &re) && !strings.HasPrefix(re.Reason, "authentication failed") {
			// It knows the secret: a pool or tool at the wrong address.
			s.ix.guard.authenticated(src)
			s.log.Warn("interchange: driver refused", "remote", remote, "err", err)
		} else {
			s.ix.guard.failed(src, "driver address: "+err.Error(), time.Now())
		}
		conn.Close()
		return
	}
	s.ix.guard.authenticated(src)
	_ = c.SetDeadline(time.Time{})
	select {
	case <-s.quit:
		conn.Close()
		return
	default:
	}
	s.mu.Lock()
	old := s.drv
	s.drv = d
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	if old != nil {
		old.conn.Close()
	}
	s.log.Info("interchange: driver connected", "remote", remote)
	for _, msg := range pending {
		if err := d.send(wire.TDeliver, msg, s.cfg.HeartbeatThreshold); err != nil {
			break
		}
	}
	s.sendStatus(s.status())
	err = s.readDriver(d)
	s.mu.Lock()
	if s.drv == d {
		s.drv = nil
		s.gone = time.Now()
	}
	s.mu.Unlock()
	conn.Close()
	select {
	case <-s.quit:
	default:
		if s.cfg.ExitWithDriver {
			// The driver that started this interchange does not reconnect:
			// the executor fails its tasks when the link breaks.
			s.log.Warn("interchange: driver link lost; this interchange belongs to that driver and stops", "err", err)
			s.halt()
			return
		}
		s.log.Warn("interchange: driver link lost; keeping pools and work for a reconnect", "err", err, "grace", s.cfg.DriverGrace)
	}
}

func (s *standalone) readDriver(d *driverLink) error {
	for {
		_ = d.conn.SetReadDeadline(time.Now().Add(s.cfg.HeartbeatThreshold))
		t, p, err := wire.ReadFrame(d.r, s.cfg.MaxFrame)
		if err != nil {
			return err
		}
		switch t {
		case wire.TSubmit:
			var sub wire.Submit
			if err := wire.Decode(t, p, &sub); err != nil {
				return err
			}
			items := make([]Item, len(sub.Items))
			for i, x := range sub.Items {
				items[i] = Item{ID: x.ID, Try: x.Try, Priority: x.Priority, Walltime: x.Walltime, Bash: x.Bash, Payload: x.Payload}
			}
			s.ix.Enqueue(items...)
		case wire.THeartbeat:
			// Not answered here: a reply written by this reader could block
			// while the driver, blocked writing tasks to us, is not reading.
			// The monitor's status frames keep the driver's side alive.
		case wire.TControl:
			var c wire.Control
			if err := wire.Decode(t, p, &c); err != nil {
				return err
			}
			switch c.Op {
			case wire.OpPurge:
				s.ix.Purge()
			case wire.OpDrain:
				s.ix.DrainBlock(c.BlockID)
			case wire.OpMonitor:
				// Not sent from this reader, for the reason above.
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					s.startMonitor(d)
				}()
			case wire.OpShutdown:
				s.log.Info("interchange: the driver asked for shutdown")
				s.halt()
				return errors.New("shut down by the driver")
			default:
				return fmt.Errorf("unknown control operation %q", c.Op)
			}
		default:
			return fmt.Errorf("unexpected %s frame from the driver", t)
		}
	}
}

// InitDir writes what a standalone interchange and the executors that use
// it share into dir: a secret, a CA and server certificate (when tls),
// and interchange.json naming them, the addresses to listen on and
// dir/addresses.json as the address file. It backs `parsl interchange
// --init DIR`; the executor's Options.InterchangeDir points at dir.
func InitDir(dir, poolAddr, driverAddr string, useTLS bool) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("parsl interchange: creating %s: %w", dir, err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("parsl interchange: making the secret: %w", err)
	}
	cfg := wire.InterchangeConfig{
		PoolAddress: poolAddr, DriverAddress: driverAddr,
		SecretFile:  filepath.Join(dir, "secret"),
		AddressFile: filepath.Join(dir, "addresses.json"),
	}
	if err := os.WriteFile(cfg.SecretFile, []byte(hex.EncodeToString(secret)), 0o600); err != nil {
		return fmt.Errorf("parsl interchange: writing the secret: %w", err)
	}
	if useTLS {
		// Clients check the certificate by certs.ServerName; the listening
		// IPs are added for tools that check by address.
		var ips []net.IP
		for _, a := range []string{poolAddr, driverAddr} {
			if h, _, err := net.SplitHostPort(a); err == nil {
				if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
					ips = append(ips, ip)
				}
			}
		}
		b, err := certs.Generate(filepath.Join(dir, "certificates"), ips, 0)
		if err != nil {
			return fmt.Errorf("parsl interchange: %w", err)
		}
		cfg.CertFile, cfg.KeyFile, cfg.CAFile = b.CertFile, b.KeyFile, b.CAFile
	}
	return wire.WriteInterchangeConfig(filepath.Join(dir, "interchange.json"), cfg)
}
