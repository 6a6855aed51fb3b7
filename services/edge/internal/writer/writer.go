// Package writer is the bounded, non-blocking outbound queue of one connection
// (modelled on centrifuge's internal/queue and writer).
//
// Enqueue never blocks: it appends a complete frame to the queue and, when no flush
// is running, starts one goroutine that drains the queue, coalescing every queued
// frame into one vectored write (net.Buffers → writev) under a write deadline, and
// exits when the queue is empty. An idle connection therefore holds no writer
// goroutine, and delivering a frame allocates nothing: the goroutine is started from
// a func value bound once per writer, and the queue and writev arrays are reused.
//
// (Measured alternatives, see docs/performance-edge.md: writing inline from the
// delivering goroutine with a non-blocking write(2) starved the NATS dispatch
// goroutines and lost frames at 150,000 deliveries/s; a fixed pool of flusher
// goroutines fed by a channel cost ~40 % more edge CPU and had higher latency than
// these short-lived flush goroutines.) When the queue would exceed its byte or frame limit, Enqueue reports
// ErrOverflow and the caller closes the connection as a slow consumer; nothing else
// is slowed down.
//
// Frames handed to Enqueue must not be modified afterwards; they may be shared by
// many writers (a fan-out frame is built once). A frame enqueued with a pooled buffer
// (from GetBuf) is owned by the writer, which returns the buffer to the pool after
// writing or dropping it.
package writer

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Errors returned by Enqueue.
var (
	// ErrOverflow: the queue limit was reached; the frame was not queued.
	ErrOverflow = errors.New("outbound queue full")
	// ErrClosed: the writer is closing or closed; the frame was not queued.
	ErrClosed = errors.New("writer closed")
)

// Conn is what the writer writes to.
type Conn interface {
	net.Conn
}

// Options configures a Writer.
type Options struct {
	MaxBytes     int           // queued bytes limit
	MaxFrames    int           // queued frames limit
	WriteTimeout time.Duration // deadline of each flush
	// OnWritten, when set, is called after each successful flush with the number of
	// frames and bytes written.
	OnWritten func(frames, bytes int)
	// OnDone is called once, from the flush goroutine, after the connection was
	// closed by the writer (after Close, or a write error). err is nil after a
	// clean Close.
	OnDone func(err error)
}

type item struct {
	b      []byte
	pooled *[]byte
}

func (it item) release() {
	if it.pooled != nil {
		PutBuf(it.pooled)
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// GetBuf returns an empty pooled buffer for one frame.
func GetBuf() *[]byte {
	b := bufPool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

// PutBuf returns a buffer to the pool (large ones are dropped).
func PutBuf(b *[]byte) {
	if cap(*b) <= 16<<10 {
		bufPool.Put(b)
	}
}

// Writer is one connection's outbound queue. Methods are safe for concurrent use.
type Writer struct {
	conn Conn
	o    *Options // shared by every writer of a server
	// flushFn is w.flush bound once: `go w.flushFn()` starts a flush without
	// allocating (a `go` statement on a method call allocates a closure each time).
	flushFn func()
	onDone  func(error) // per-connection done hook (SetDone)

	mu       sync.Mutex
	queue    []item
	spare    []item
	bytes    int
	flushing bool
	closing  bool // no more Enqueue; the connection closes once the queue is written
	done     bool
}

// New returns a writer for conn. o is shared, not copied: keep it alive and unchanged.
func New(conn Conn, o *Options) *Writer {
	w := &Writer{conn: conn, o: o}
	w.flushFn = w.flush
	return w
}

// SetDone sets a hook called once, after Options.OnDone, when the writer has closed
// the connection; like OnDone it runs on a flush goroutine, never inside Enqueue,
// Close or Abort. Call it right after New, before any other method.
func (w *Writer) SetDone(f func(err error)) { w.onDone = f }

// Busy reports whether a flush is running (tests and benchmarks).
func (w *Writer) Busy() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushing
}

// Enqueue queues a frame. pooled (may be nil) is the GetBuf buffer frame lives in; the
// writer returns it to the pool once the frame was written or dropped, including when
// Enqueue fails.
func (w *Writer) Enqueue(frame []byte, pooled *[]byte) error {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		if pooled != nil {
			PutBuf(pooled)
		}
		return ErrClosed
	}
	if len(w.queue) >= w.o.MaxFrames || w.bytes+len(frame) > w.o.MaxBytes {
		w.mu.Unlock()
		if pooled != nil {
			PutBuf(pooled)
		}
		return ErrOverflow
	}
	if w.queue == nil && w.spare != nil {
		w.queue, w.spare = w.spare[:0], nil // reuse the last flush's array
	}
	w.queue = append(w.queue, item{b: frame, pooled: pooled})
	w.bytes += len(frame)
	start := !w.flushing
	w.flushing = true
	w.mu.Unlock()
	if start {
		go w.flushFn()
	}
	return nil
}

// Queued reports the queued frames and bytes.
func (w *Writer) Queued() (frames, bytes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue), w.bytes
}

// Close stops accepting frames and closes the connection after writing last (a close
// frame; may be nil). With drop, frames still queued are discarded first (a slow
// consumer gets its close frame right after the write in progress). Close is
// idempotent: only the first call counts.
func (w *Writer) Close(last []byte, drop bool) {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return
	}
	w.closing = true
	var dropped []item
	if drop {
		dropped = w.queue
		w.queue = nil
		w.bytes = 0
	}
	if last != nil {
		w.queue = append(w.queue, item{b: last})
		w.bytes += len(last)
	}
	start := !w.flushing
	w.flushing = true
	w.mu.Unlock()
	for _, it := range dropped {
		it.release()
	}
	if start {
		go w.flushFn()
	}
}

// Abort closes the connection at once, dropping queued frames (peer gone, read error).
// A flush in progress fails and finishes; OnDone is still called exactly once.
func (w *Writer) Abort() {
	w.mu.Lock()
	w.closing = true
	dropped := w.queue
	w.queue, w.bytes = nil, 0
	start := !w.flushing
	w.flushing = true
	w.mu.Unlock()
	for _, it := range dropped {
		it.release()
	}
	_ = w.conn.Close()
	if start {
		go w.flushFn()
	}
}

var buffersPool = sync.Pool{New: func() any { b := make(net.Buffers, 0, 16); return &b }}

func (w *Writer) flush() {
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			if w.closing {
				w.finish(nil)
				return
			}
			w.flushing = false
			// An idle writer keeps no large backing arrays.
			if cap(w.spare) > 64 {
				w.spare = nil
			}
			w.mu.Unlock()
			return
		}
		batch := w.queue
		w.queue, w.spare = w.spare[:0], nil
		w.bytes = 0
		w.mu.Unlock()

		bp := buffersPool.Get().(*net.Buffers)
		bufs := (*bp)[:0]
		total := 0
		for _, it := range batch {
			bufs = append(bufs, it.b)
			total += len(it.b)
		}
		_ = w.conn.SetWriteDeadline(time.Now().Add(w.o.WriteTimeout))
		// WriteTo consumes its receiver: hand it the pooled header (a local copy
		// would escape, one allocation per flush); bufs restores it below.
		*bp = bufs
		_, err := bp.WriteTo(w.conn)
		for i := range bufs {
			bufs[i] = nil
		}
		*bp = bufs[:0]
		buffersPool.Put(bp)
		for i, it := range batch {
			it.release()
			batch[i] = item{}
		}
		if err != nil {
			w.mu.Lock()
			w.closing = true
			dropped := w.queue
			w.queue, w.bytes = nil, 0
			w.finish(err)
			for _, it := range dropped {
				it.release()
			}
			return
		}
		if w.o.OnWritten != nil {
			w.o.OnWritten(len(batch), total)
		}
		w.mu.Lock()
		if w.spare == nil {
			w.spare = batch[:0]
		}
		w.mu.Unlock()
	}
}

// finish is called with w.mu held and releases it.
func (w *Writer) finish(err error) {
	already := w.done
	w.done = true
	w.flushing = false
	w.mu.Unlock()
	if already {
		return
	}
	_ = w.conn.Close()
	if w.o.OnDone != nil {
		w.o.OnDone(err)
	}
	if w.onDone != nil {
		w.onDone(err)
	}
}
