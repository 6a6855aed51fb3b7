package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

func (r *run) progress() Progress {
	var p Progress
	for _, h := range r.workers {
		if q := h.prog.Load(); q != nil {
			p.Conns += q.Conns
			p.Sent += q.Sent
			p.Acked += q.Acked
			p.Delivered += q.Delivered
			p.Recovered += q.Recovered
			p.Rejoined += q.Rejoined
			p.Refused += q.Refused
		}
	}
	return p
}

// bar prints a progress line on o.Progress every second until stopped.
func (r *run) bar(ctx context.Context) func() {
	if r.o.Progress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		t0 := time.Now()
		tty, n := isTerminal(r.o.Progress), 0
		for {
			select {
			case <-stop:
				if tty {
					fmt.Fprintln(r.o.Progress)
				}
				return
			case <-ctx.Done():
				return
			case <-t.C:
				p := r.progress()
				frac := float64(p.Conns) / float64(r.o.Conns)
				phase := "connect"
				if ns := r.sendStartNs.Load(); ns != 0 {
					phase = "send"
					frac = min(max(time.Since(time.Unix(0, ns)).Seconds(), 0)/r.o.Duration.Seconds(), 1)
				}
				const width = 30
				filled := int(max(frac, 0) * width)
				bar := make([]byte, width)
				for i := range bar {
					bar[i] = '-'
					if i < filled {
						bar[i] = '#'
					}
				}
				line := fmt.Sprintf("[%s] %3.0f%% %-7s %5.0fs conns=%d sent=%d acked=%d delivered=%d",
					bar, frac*100, phase, time.Since(t0).Seconds(), p.Conns, p.Sent, p.Acked, p.Delivered)
				if tty {
					fmt.Fprintf(r.o.Progress, "\r%s   ", line)
				} else if n++; n%5 == 0 {
					fmt.Fprintln(r.o.Progress, line) // a log file gets a line every 5 s
				}
			}
		}
	}()
	return func() { close(stop); <-done }
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
