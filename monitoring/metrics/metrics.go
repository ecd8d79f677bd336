// Package metrics exposes a workflow's task counts, task durations and
// executor pools as Prometheus metrics.
//
// A Collector is a dataflow observer: the kernel tells it of every task
// state change and it updates counters in memory. Nothing is written
// anywhere until a scraper asks Handler for the text exposition, so the
// cost on the kernel's hot path is a few atomic adds and one short lock.
// Each Collector has its own registry, so several DFKs in one process do
// not share (or clash on) global metrics.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parsl-go/parsl/interchange"
	"github.com/parsl-go/parsl/internal/dataflow"
)

// PoolReporter is implemented by executors that can say which worker
// pools are connected to them now (htex does). The Collector reads it at
// scrape time only, never on the task path.
type PoolReporter interface {
	Label() string
	Managers() []interchange.ManagerInfo
}

// shards spreads the per-task records over several locks so that
// concurrent events for different tasks rarely contend.
const shards = 64

// stateSlots covers every State value (Unsched is -1) so that a state can
// index the pre-built children without a map lookup.
const stateSlots = 16

// taskRec is what the Collector remembers of a live task: the gauge it is
// counted in, and its current try's launch, for the duration histogram.
type taskRec struct {
	state    dataflow.State
	executor string
	launched time.Time
}

type shard struct {
	mu sync.Mutex
	m  map[int64]taskRec
	_  [40]byte // keep shards on separate cache lines
}

// Collector turns kernel events into Prometheus metrics. Create it with
// New; it is safe for concurrent use.
type Collector struct {
	reg *prometheus.Registry

	total    *prometheus.CounterVec
	current  *prometheus.GaugeVec
	duration *prometheus.HistogramVec
	tries    prometheus.Counter

	// Children resolved once, indexed by slot(state): WithLabelValues on
	// every event would hash the label and take the vector's lock.
	totalBy   [stateSlots]prometheus.Counter
	currentBy [stateSlots]prometheus.Gauge

	durMu sync.RWMutex
	durBy map[string]prometheus.Observer

	live [shards]shard
}

func slot(s dataflow.State) int {
	i := int(s) + 1
	if i < 0 || i >= stateSlots {
		return -1
	}
	return i
}

// New returns a Collector whose registry also carries the Go runtime and
// process collectors. pools are read at each scrape; executors that do not
// implement PoolReporter are skipped.
func New(pools ...any) *Collector {
	c := &Collector{
		reg: prometheus.NewRegistry(),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parsl_tasks_total",
			Help: "Tasks that ended, by final state (exec_done, memo_done, failed, dep_fail).",
		}, []string{"state"}),
		current: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "parsl_tasks",
			Help: "Tasks in each non-final state now.",
		}, []string{"state"}),
		// Labelled by executor, not app: app names are chosen by users and
		// unbounded, and a label per app would grow the series without limit.
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "parsl_task_duration_seconds",
			Help:    "Time from the launch of a task's last try to its final state, by executor.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12), // 1ms .. ~70min
		}, []string{"executor"}),
		tries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parsl_task_tries_total",
			Help: "Failed tries of tasks on an executor (retried or final).",
		}),
		durBy: map[string]prometheus.Observer{},
	}
	for _, s := range dataflow.States {
		i := slot(s)
		if s.Final() {
			c.totalBy[i] = c.total.WithLabelValues(s.String())
		} else {
			c.currentBy[i] = c.current.WithLabelValues(s.String())
		}
	}
	for i := range c.live {
		c.live[i].m = map[int64]taskRec{}
	}
	var rs []PoolReporter
	for _, p := range pools {
		if r, ok := p.(PoolReporter); ok {
			rs = append(rs, r)
		}
	}
	c.reg.MustRegister(c.total, c.current, c.duration, c.tries,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if len(rs) > 0 {
		c.reg.MustRegister(&poolCollector{pools: rs})
	}
	return c
}

// Registry returns the Collector's private registry, for callers that
// want to add their own metrics to the same endpoint.
func (c *Collector) Registry() *prometheus.Registry { return c.reg }

// Handler serves the metrics in the Prometheus text (or OpenMetrics)
// format; mount it at /metrics.
func (c *Collector) Handler() http.Handler {
	return promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{Registry: c.reg})
}

// TaskEvent implements dataflow.Observer. It only updates in-memory
// metrics, so it is safe on the kernel's hot path.
func (c *Collector) TaskEvent(e dataflow.Event) {
	i := slot(e.State)
	if i < 0 {
		return
	}
	sh := &c.live[uint64(e.TaskID)%shards]
	sh.mu.Lock()
	prev, had := sh.m[e.TaskID]
	var rec taskRec
	if !e.State.Final() {
		rec = prev
		rec.state = e.State
		if e.State == dataflow.Launched {
			rec.executor, rec.launched = e.Executor, e.Time
		}
		sh.m[e.TaskID] = rec
	} else if had {
		delete(sh.m, e.TaskID)
	}
	sh.mu.Unlock()

	// A task is counted in exactly one non-final gauge while it lives:
	// leave the old state's gauge before entering the new one, so
	// pending→launched→fail_retryable→pending→launched→exec_done nets 0.
	if had {
		if j := slot(prev.state); j >= 0 && c.currentBy[j] != nil {
			c.currentBy[j].Dec()
		}
	}
	if g := c.currentBy[i]; g != nil {
		g.Inc()
	}
	if e.State == dataflow.FailRetryable || (e.State == dataflow.Failed && had && (prev.state == dataflow.Launched || prev.state == dataflow.Joining)) {
		c.tries.Inc()
	}
	if ctr := c.totalBy[i]; ctr != nil {
		ctr.Inc()
		if had && !prev.launched.IsZero() {
			c.observer(prev.executor).Observe(e.Time.Sub(prev.launched).Seconds())
		}
	}
}

// observer returns the duration histogram's child for an executor label;
// the set of labels is the configured executors, so this map stays small.
func (c *Collector) observer(label string) prometheus.Observer {
	c.durMu.RLock()
	o := c.durBy[label]
	c.durMu.RUnlock()
	if o != nil {
		return o
	}
	c.durMu.Lock()
	defer c.durMu.Unlock()
	if o = c.durBy[label]; o == nil {
		o = c.duration.WithLabelValues(label)
		c.durBy[label] = o
	}
	return o
}

// poolCollector reports the pools connected to executors that can say so.
// It is an unchecked collector (Describe sends nothing) because it builds
// const metrics at scrape time.
type poolCollector struct{ pools []PoolReporter }

var (
	managersDesc = prometheus.NewDesc("parsl_managers", "Worker pools (managers) connected now.", []string{"executor"}, nil)
	blocksDesc   = prometheus.NewDesc("parsl_blocks", "Blocks with at least one connected manager.", []string{"executor"}, nil)
	busyDesc     = prometheus.NewDesc("parsl_workers_busy", "Workers of connected managers running a task.", []string{"executor"}, nil)
	idleDesc     = prometheus.NewDesc("parsl_workers_idle", "Workers of connected managers with no task.", []string{"executor"}, nil)
)

func (p *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- managersDesc
	ch <- blocksDesc
	ch <- busyDesc
	ch <- idleDesc
}

func (p *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range p.pools {
		ms := r.Managers()
		blocks := map[string]struct{}{}
		busy, idle := 0, 0
		for _, m := range ms {
			if m.BlockID != "" {
				blocks[m.BlockID] = struct{}{}
			}
			// InFlight counts prefetched tasks too; a worker runs one at a time.
			b := min(m.InFlight, m.Workers)
			busy += b
			idle += m.Workers - b
		}
		l := r.Label()
		ch <- prometheus.MustNewConstMetric(managersDesc, prometheus.GaugeValue, float64(len(ms)), l)
		ch <- prometheus.MustNewConstMetric(blocksDesc, prometheus.GaugeValue, float64(len(blocks)), l)
		ch <- prometheus.MustNewConstMetric(busyDesc, prometheus.GaugeValue, float64(busy), l)
		ch <- prometheus.MustNewConstMetric(idleDesc, prometheus.GaugeValue, float64(idle), l)
	}
}
