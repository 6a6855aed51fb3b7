package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// workerHandle is the coordinator's side of one worker. Its events are sorted by
// type, so commands that run at once (send and drop, send and probe) each await
// their own answer.
type workerHandle struct {
	idx   int
	in    io.WriteCloser
	inMu  sync.Mutex
	mu    sync.Mutex
	byTyp map[string]chan Event
	errs  chan Event
	gone  chan struct{} // closed when the worker's output ends
	prog  atomic.Pointer[Progress]
	cmd   *exec.Cmd
	pid   int
	done  chan struct{}
}

// events returns the channel of events of type typ.
func (h *workerHandle) events(typ string) chan Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := h.byTyp[typ]
	if ch == nil {
		ch = make(chan Event, 16)
		h.byTyp[typ] = ch
	}
	return ch
}

func (h *workerHandle) send(c Cmd) error {
	b, _ := json.Marshal(c)
	h.inMu.Lock()
	defer h.inMu.Unlock()
	_, err := h.in.Write(append(b, '\n'))
	return err
}

// await waits for the next event of type typ; an error event fails it.
func (h *workerHandle) await(ctx context.Context, typ string, d time.Duration) (Event, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case e := <-h.events(typ):
		return e, nil
	case e := <-h.errs:
		return e, fmt.Errorf("worker %d: %s", h.idx, e.Error)
	case <-h.gone:
		select { // the event may have arrived just before the end
		case e := <-h.events(typ):
			return e, nil
		default:
		}
		return Event{}, fmt.Errorf("worker %d exited while waiting for %s", h.idx, typ)
	case <-t.C:
		return Event{}, fmt.Errorf("worker %d: no %s within %s", h.idx, typ, d)
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

func (r *run) startWorker(ctx context.Context, cfg WorkerConfig) (*workerHandle, error) {
	h := &workerHandle{idx: cfg.Index, byTyp: map[string]chan Event{}, errs: make(chan Event, 16), gone: make(chan struct{}), done: make(chan struct{})}
	var out io.ReadCloser
	if r.o.InProcess {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		h.in, out = inW, outR
		go func() {
			defer close(h.done)
			err := RunWorker(ctx, inR, outW)
			outW.CloseWithError(err)
		}()
		h.pid = os.Getpid()
	} else {
		exe := r.o.WorkerExe
		if exe == "" {
			var err error
			if exe, err = os.Executable(); err != nil {
				return nil, err
			}
		}
		h.cmd = exec.Command(exe, "bench", "worker")
		h.cmd.Stderr = r.logw()
		var err error
		if h.in, err = h.cmd.StdinPipe(); err != nil {
			return nil, err
		}
		if out, err = h.cmd.StdoutPipe(); err != nil {
			return nil, err
		}
		if err := h.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start worker: %w", err)
		}
		h.pid = h.cmd.Process.Pid
		go func() { _ = h.cmd.Wait(); close(h.done) }()
	}
	go func() {
		defer close(h.gone)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			var e Event
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			switch e.Type {
			case "progress":
				h.prog.Store(e.Progress)
				continue
			case "error":
				select {
				case h.errs <- e:
				default: // nobody is listening to that many errors
				}
				continue
			}
			select {
			case h.events(e.Type) <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	b, _ := json.Marshal(cfg)
	if _, err := h.in.Write(append(b, '\n')); err != nil { // before any command: no lock needed
		return nil, err
	}
	if _, err := h.await(ctx, "ready", 30*time.Second); err != nil {
		return nil, err
	}
	return h, nil
}

// all sends c to every worker and waits for each one's typ event.
func (r *run) all(ctx context.Context, c Cmd, typ string, d time.Duration) ([]Event, error) {
	for _, h := range r.workers {
		if err := h.send(c); err != nil {
			return nil, fmt.Errorf("worker %d: %w", h.idx, err)
		}
	}
	evs := make([]Event, len(r.workers))
	errs := make([]error, len(r.workers))
	var wg sync.WaitGroup
	for i, h := range r.workers {
		wg.Go(func() { evs[i], errs[i] = h.await(ctx, typ, d) })
	}
	wg.Wait()
	return evs, errors.Join(errs...)
}

// spawn starts the workers, splitting the users evenly.
func (r *run) spawn(ctx context.Context) error {
	n := r.o.Workers
	per := (r.o.Conns + n - 1) / n
	for k := range n {
		first := k * per
		count := min(per, r.o.Conns-first)
		if count <= 0 {
			break
		}
		ip, err := SourceIP(k)
		if err != nil {
			return err
		}
		cfg := WorkerConfig{Index: k, SourceIP: ip, WSURL: r.t.WSURL, Secret: r.t.JWTSecret, UserPrefix: "bench-u",
			First: first, Count: count, ConnectRate: r.o.ConnectRate / float64(n), PadBytes: r.o.PadBytes, SenderEvery: 1}
		switch r.o.Scenario {
		case Fanout:
			cfg.Room = r.roomName(0)
			cfg.SenderEvery = max(r.o.Conns/r.o.Senders, 1)
		case Rooms, ReconnectStorm:
			cfg.RoomPrefix, cfg.RoomSize = r.roomPrefix(), r.o.RoomSize
		case JoinStorm:
			cfg.Room = r.roomName(0)
		}
		if r.o.ProbeAfter > 0 && r.o.ProbeRoom == ProbeFresh {
			cfg.ProbeRoom = r.probeRoom()
		}
		h, err := r.startWorker(ctx, cfg)
		if err != nil {
			return err
		}
		r.workers = append(r.workers, h)
	}
	return nil
}

func (r *run) stopWorkers() {
	for _, h := range r.workers {
		_ = h.send(Cmd{Op: "exit"})
		_ = h.in.Close()
	}
	for _, h := range r.workers {
		select {
		case <-h.done:
		case <-time.After(15 * time.Second):
			if h.cmd != nil && h.cmd.Process != nil {
				_ = h.cmd.Process.Kill()
			}
		}
	}
}

// measure reads the system's processes.
func (r *run) measure() procSet {
	var s procSet
	if r.t.EdgePID > 0 {
		s.edge, _ = ReadProc(r.t.EdgePID)
	}
	if r.t.ServicesPID > 0 && r.t.ServicesPID != r.t.EdgePID {
		s.services, _ = ReadProc(r.t.ServicesPID)
	}
	if r.t.StoreMatch != "" {
		pids := FindByCmdline(r.t.StoreMatch) // the postmaster; its backends are its children
		for _, p := range pids {
			pids = append(pids, Descendants(p)...)
		}
		s.store = ReadTree(pids)
	}
	return s
}

type procSet struct{ edge, services, store ProcStat }
