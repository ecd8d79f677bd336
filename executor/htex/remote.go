package htex

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/parsl-go/parsl/interchange"
	"github.com/parsl-go/parsl/internal/certs"
	"github.com/parsl-go/parsl/internal/wire"
)

// Values of Options.Interchange.
const (
	// InterchangeInProcess runs the interchange as goroutines of the
	// driver (the default, "").
	InterchangeInProcess = ""
	// InterchangeProcess starts a standalone interchange as a child
	// process (this executable with PARSL_ROLE=interchange) and connects
	// to it.
	InterchangeProcess = "process"
)

// broker is what the executor needs of an interchange: the in-process
// *interchange.Interchange, or remoteIX, the link to a standalone one.
type broker interface {
	Addr() net.Addr
	Enqueue(items ...interchange.Item)
	Purge() []interchange.Item
	Managers() []interchange.ManagerInfo
	DrainBlock(blockID string) int
	Shutdown(ctx context.Context) error
	Close() error
}

// InterchangeLostError is why tasks fail when the link to a standalone
// interchange is lost: the executor goes bad with it as the reason.
type InterchangeLostError struct {
	Address string
	Err     error
}

// Error implements error.
func (e *InterchangeLostError) Error() string {
	return fmt.Sprintf("lost the link to the interchange at %s: %v; check the interchange's log (interchange/interchange.log in the run directory when the executor started it)", e.Address, e.Err)
}

// Unwrap returns the link error.
func (e *InterchangeLostError) Unwrap() error { return e.Err }

// startBroker sets e.ix: an in-process interchange, or a standalone one
// per Options.Interchange; pc gets the addresses (and for an interchange
// started by someone else, the secret and CA) pools must use.
func (e *Executor) startBroker(ctx context.Context, ixo interchange.Options, pc *wire.PoolConfig) error {
	if e.opts.Interchange == InterchangeInProcess {
		ix, err := interchange.New(ixo)
		if err != nil {
			return fmt.Errorf("htex %q: %w", e.opts.Label, err)
		}
		e.ix = ix
		pc.Addresses = interchange.PoolAddresses(ix.Addr())
		return nil
	}
	r, err := e.startRemote(ctx, ixo, pc)
	if err != nil {
		return fmt.Errorf("htex %q: %w", e.opts.Label, err)
	}
	e.ix = r
	pc.Addresses = r.pools
	return nil
}

// remoteIX is the driver's end of the link to a standalone interchange.
type remoteIX struct {
	e      *Executor
	target string   // the interchange's driver address
	pools  []string // what pools dial
	pid    int      // the interchange's process ID, when known

	conn net.Conn
	r    *bufio.Reader
	wmu  sync.Mutex
	w    *bufio.Writer

	cmd    *exec.Cmd     // set when the executor started the interchange
	exited chan struct{} // closed when cmd has been waited for
	// lifeline is the write end of the child's stdin: the child exits
	// when it closes, that is with this process at the latest.
	lifeline *os.File

	mu       sync.Mutex
	mgrs     []interchange.ManagerInfo
	stopping bool // Shutdown or Close started: losing the link is expected

	readDone chan struct{}
	quit     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

type strAddr string

func (a strAddr) Network() string { return "tcp" }
func (a strAddr) String() string  { return string(a) }

// startRemote starts (Options.Interchange "process") or finds (a
// host:port) a standalone interchange and connects to it.
func (e *Executor) startRemote(ctx context.Context, ixo interchange.Options, pc *wire.PoolConfig) (*remoteIX, error) {
	r := &remoteIX{e: e, readDone: make(chan struct{}), quit: make(chan struct{})}
	var (
		secret []byte
		caFile string
		addrs  wire.Addresses
	)
	if e.opts.Interchange == InterchangeProcess {
		dir := filepath.Join(e.dir, "interchange")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
		poolAddr := e.opts.Address
		if poolAddr == "" {
			poolAddr = "127.0.0.1:0"
		}
		cfg := wire.InterchangeConfig{
			PoolAddress: poolAddr, DriverAddress: "127.0.0.1:0", SecretFile: pc.SecretFile, CAFile: pc.CAFile,
			BuildID: ixo.Expect.BuildID, Digest: ixo.Expect.Digest,
			HeartbeatPeriod: ixo.HeartbeatPeriod, HeartbeatThreshold: ixo.HeartbeatThreshold,
			AddressFile: filepath.Join(dir, "addresses.json"), MaxFrame: ixo.MaxFrame,
			ExitWithDriver: true,
		}
		if ixo.TLS != nil {
			cd := filepath.Dir(pc.CAFile)
			cfg.CertFile, cfg.KeyFile = filepath.Join(cd, "server.pem"), filepath.Join(cd, "server-key.pem")
		}
		cfgPath := filepath.Join(dir, "interchange.json")
		if err := wire.WriteInterchangeConfig(cfgPath, cfg); err != nil {
			return nil, fmt.Errorf("writing the interchange configuration: %w", err)
		}
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding this executable to start the interchange: %w", err)
		}
		logf, err := os.OpenFile(filepath.Join(dir, "interchange.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("creating the interchange log: %w", err)
		}
		// The child must not outlive this process (its pools would go on
		// taking queued tasks for nobody): its stdin is a pipe whose
		// write end only this process holds, and it exits when that pipe
		// ends (see interchange.watchDriver). On Linux a parent-death
		// signal backs this up.
		lr, lw, err := os.Pipe()
		if err != nil {
			logf.Close()
			return nil, fmt.Errorf("making the interchange's lifeline pipe: %w", err)
		}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), "PARSL_ROLE=interchange", wire.InterchangeConfigEnv+"="+cfgPath)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = lr, logf, logf
		cmd.SysProcAttr = deathSignal()
		started := make(chan error, 1)
		r.exited = make(chan struct{})
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer close(r.exited)
			// The parent-death signal fires when the thread that started
			// the child exits, and the runtime ends a thread when a
			// goroutine locked to it returns. Started from a goroutine
			// locked to its thread until the child is reaped, the signal
			// can only come from the death of this process.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			err := cmd.Start()
			started <- err
			if err == nil {
				_ = cmd.Wait()
			}
		}()
		err = <-started
		lr.Close()   // the child has its own descriptor
		logf.Close() // likewise
		if err != nil {
			lw.Close()
			r.wg.Wait()
			return nil, fmt.Errorf("starting the interchange process %s: %w", exe, err)
		}
		r.cmd, r.lifeline = cmd, lw
		// The child writes the address file once it listens.
		deadline := time.After(20 * time.Second)
		for {
			a, err := wire.ReadAddresses(cfg.AddressFile)
			if err == nil {
				addrs = a
				break
			}
			select {
			case <-r.exited:
				r.wg.Wait()
				r.closeLifeline()
				return nil, fmt.Errorf("the interchange process exited (%v) before listening; see %s", cmd.ProcessState, filepath.Join(dir, "interchange.log"))
			case <-deadline:
				r.kill()
				return nil, fmt.Errorf("the interchange process wrote no address file in 20 s; see %s", filepath.Join(dir, "interchange.log"))
			case <-ctx.Done():
				r.kill()
				return nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		secret, caFile = ixo.Secret, pc.CAFile
		if ixo.TLS == nil {
			caFile = ""
		}
	} else {
		dir := e.opts.InterchangeDir
		if dir == "" {
			return nil, fmt.Errorf("Options.Interchange is %q but Options.InterchangeDir is empty; point it at the directory made by `parsl interchange --init DIR`", e.opts.Interchange)
		}
		cfg, err := wire.ReadInterchangeConfig(filepath.Join(dir, "interchange.json"))
		if err != nil {
			return nil, err
		}
		if secret, err = interchange.ReadSecret(cfg.SecretFile); err != nil {
			return nil, err
		}
		if addrs, err = wire.ReadAddresses(cfg.AddressFile); err != nil {
			return nil, fmt.Errorf("reading the addresses of the interchange (is it running?): %w", err)
		}
		addrs.Driver = e.opts.Interchange
		if cfg.CertFile != "" {
			caFile = cfg.CAFile
		}
		// Pools read the interchange's secret and CA, not the ones this
		// executor made (a shared file system is assumed, as for pool.json).
		pc.SecretFile, pc.CAFile = cfg.SecretFile, caFile
		if caFile == "" {
			pc.ServerName = ""
		}
	}
	r.target, r.pools, r.pid = addrs.Driver, addrs.Pools, addrs.PID
	if err := r.dial(ctx, secret, caFile); err != nil {
		r.kill()
		return nil, err
	}
	r.wg.Add(2)
	go r.read()
	go r.heartbeat()
	return r, nil
}

// dial connects and authenticates to the interchange's driver address.
func (r *remoteIX) dial(ctx context.Context, secret []byte, caFile string) error {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(dctx, "tcp", r.target)
	if err != nil {
		return fmt.Errorf("connecting to the interchange at %s: %w", r.target, err)
	}
	if d, ok := dctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	conn := c
	if caFile != "" {
		tc, err := certs.ClientConfig(caFile, certs.ServerName)
		if err != nil {
			c.Close()
			return err
		}
		t := tls.Client(c, tc)
		if err := t.HandshakeContext(dctx); err != nil {
			c.Close()
			return fmt.Errorf("TLS with the interchange at %s: %w", r.target, err)
		}
		conn = t
	}
	br, bw := bufio.NewReaderSize(conn, 64<<10), bufio.NewWriterSize(conn, 64<<10)
	host, _ := os.Hostname()
	welcome, err := wire.ClientHandshake(br, bw, secret, wire.Hello{Role: wire.RoleDriver, Manager: "driver", Hostname: host})
	if err != nil {
		conn.Close()
		return fmt.Errorf("joining the interchange at %s: %w", r.target, err)
	}
	_ = c.SetDeadline(time.Time{})
	r.conn, r.r, r.w = conn, br, bw
	if r.e.pump != nil {
		if !welcome.Monitor {
			r.e.log.Warn("htex: the interchange does not forward monitoring messages (an older parsl interchange?); node and resource rows will be missing", "address", r.target)
		} else if err := r.send(wire.TControl, wire.Control{Op: wire.OpMonitor}); err != nil {
			conn.Close()
			return fmt.Errorf("asking the interchange at %s for monitoring messages: %w", r.target, err)
		}
	}
	return nil
}

func (r *remoteIX) send(t wire.Type, v any) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	// An interchange that stops reading must not block Submit for ever;
	// the failed write closes the link and the reader fails the tasks.
	_ = r.conn.SetWriteDeadline(time.Now().Add(r.e.opts.HeartbeatThreshold))
	if err := wire.WriteFrame(r.w, t, v); err != nil {
		return err
	}
	return r.w.Flush()
}

// read takes results and status from the interchange until the link ends.
// A link lost while the executor runs puts the executor in bad state, so
// that no task waits for an interchange that is gone.
func (r *remoteIX) read() {
	defer r.wg.Done()
	defer close(r.readDone)
	thr := r.e.opts.HeartbeatThreshold
	var err error
	for {
		_ = r.conn.SetReadDeadline(time.Now().Add(thr))
		var (
			t wire.Type
			p []byte
		)
		t, p, err = wire.ReadFrame(r.r, r.e.opts.MaxFrame)
		if err != nil {
			break
		}
		switch t {
		case wire.TDeliver:
			var d wire.Deliver
			if err = wire.Decode(t, p, &d); err != nil {
				break
			}
			r.e.deliver(d.Results, interchange.InfoFromWire(d.From))
		case wire.TStatus:
			var st wire.Status
			if err = wire.Decode(t, p, &st); err != nil {
				break
			}
			ms := make([]interchange.ManagerInfo, len(st.Managers))
			for i, m := range st.Managers {
				ms[i] = interchange.InfoFromWire(m)
			}
			r.mu.Lock()
			r.mgrs = ms
			r.mu.Unlock()
			if ev := st.Event; ev != nil {
				r.e.onManager(interchange.InfoFromWire(ev.Manager), ev.Gone, ev.Reason)
			}
			if rf := st.Refused; rf != nil {
				r.e.onRefused(interchange.Refusal{Remote: rf.Remote, Auth: rf.Auth, Manager: rf.Manager, Hostname: rf.Hostname, BlockID: rf.BlockID, Reason: rf.Reason})
			}
		case wire.TMonitorFrom:
			var m wire.MonitorFrom
			if err = wire.Decode(t, p, &m); err != nil {
				break
			}
			r.e.onMonitor(interchange.InfoFromWire(m.From), &m.Monitor)
		case wire.THeartbeat:
		default:
			err = fmt.Errorf("unexpected %s frame", t)
		}
		if err != nil {
			break
		}
	}
	r.mu.Lock()
	stopping := r.stopping
	r.mgrs = nil
	r.mu.Unlock()
	r.conn.Close()
	if !stopping {
		lost := &InterchangeLostError{Address: r.target, Err: err}
		r.e.log.Error("htex: interchange lost; failing its tasks", "err", lost)
		r.e.setBad(lost.Error())
	}
}

// heartbeat tells the interchange the driver is alive; the interchange's
// periodic status frames do the same the other way.
func (r *remoteIX) heartbeat() {
	defer r.wg.Done()
	t := time.NewTicker(r.e.opts.HeartbeatPeriod)
	defer t.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-r.readDone:
			return
		case <-t.C:
		}
		if err := r.send(wire.THeartbeat, nil); err != nil {
			r.conn.Close() // the reader reports it
			return
		}
	}
}

// Addr returns the first address pools dial.
func (r *remoteIX) Addr() net.Addr {
	if len(r.pools) == 0 {
		return strAddr("")
	}
	return strAddr(r.pools[0])
}

// Enqueue sends tasks to the interchange. A failed write closes the link;
// the reader then fails every task the executor holds.
func (r *remoteIX) Enqueue(items ...interchange.Item) {
	sub := wire.Submit{Items: make([]wire.SubmitItem, len(items))}
	for i, it := range items {
		sub.Items[i] = wire.SubmitItem{ID: it.ID, Try: it.Try, Priority: it.Priority, Walltime: it.Walltime, Bash: it.Bash, Payload: it.Payload}
	}
	if err := r.send(wire.TSubmit, sub); err != nil {
		r.conn.Close()
	}
}

// Purge drops the interchange's queued tasks. It returns nil: the tasks
// are in the other process, and the executor fails its own table anyway.
func (r *remoteIX) Purge() []interchange.Item {
	_ = r.send(wire.TControl, wire.Control{Op: wire.OpPurge})
	return nil
}

// Managers returns the managers of the interchange's last status.
func (r *remoteIX) Managers() []interchange.ManagerInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]interchange.ManagerInfo(nil), r.mgrs...)
}

// DrainBlock asks the interchange to drain a block's managers and returns
// how many it had at the last status.
func (r *remoteIX) DrainBlock(blockID string) int {
	_ = r.send(wire.TControl, wire.Control{Op: wire.OpDrain, BlockID: blockID})
	n := 0
	for _, m := range r.Managers() {
		if m.BlockID == blockID {
			n++
		}
	}
	return n
}

// Shutdown asks the interchange to tell pools to exit and to exit itself,
// and waits until it closes the link or ctx ends.
func (r *remoteIX) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.stopping = true
	r.mu.Unlock()
	if err := r.send(wire.TControl, wire.Control{Op: wire.OpShutdown}); err != nil {
		return nil // the link is already gone
	}
	select {
	case <-r.readDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the interchange at %s did not close the link after the shutdown message: %w", r.target, ctx.Err())
	}
}

// Close closes the link, waits for the executor's goroutines of the link
// and, when the executor started the interchange, for its process (killed
// if it has not exited within 5 s).
func (r *remoteIX) Close() error {
	r.mu.Lock()
	r.stopping = true
	r.mu.Unlock()
	// Without Shutdown first (Start failing after the link is up), the
	// interchange would otherwise wait out its grace period for a
	// reconnect; asking again after Shutdown is harmless.
	_ = r.send(wire.TControl, wire.Control{Op: wire.OpShutdown})
	r.once.Do(func() { close(r.quit) })
	r.conn.Close()
	var err error
	if r.cmd != nil {
		select {
		case <-r.exited:
		case <-time.After(5 * time.Second):
			err = fmt.Errorf("the interchange process %d did not exit within 5 s of shutdown; killed it", r.cmd.Process.Pid)
			_ = r.cmd.Process.Kill()
		}
	}
	r.wg.Wait()
	r.closeLifeline()
	return err
}

func (r *remoteIX) closeLifeline() {
	if r.lifeline != nil {
		r.lifeline.Close()
		r.lifeline = nil
	}
}

// kill stops a child interchange that is not wanted after all and waits
// for it.
func (r *remoteIX) kill() {
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
	}
	r.wg.Wait()
	r.closeLifeline()
}

// InterchangePID returns the process ID of a standalone interchange (0
// when the interchange runs in this process or is unknown).
func (e *Executor) InterchangePID() int {
	if r, ok := e.ix.(*remoteIX); ok {
		if r.cmd != nil {
			return r.cmd.Process.Pid
		}
		return r.pid
	}
	return 0
}

// InterchangeDriverAddr returns the address the executor connected to on
// a standalone interchange ("" in-process).
func (e *Executor) InterchangeDriverAddr() string {
	if r, ok := e.ix.(*remoteIX); ok {
		return r.target
	}
	return ""
}

var _ broker = (*interchange.Interchange)(nil)
