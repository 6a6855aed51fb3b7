package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ProcStat is what the bench reads of a process from /proc.
type ProcStat struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpuSeconds"` // utime + stime
	RSSBytes   int64   `json:"rssBytes"`   // VmRSS
}

// clockTicks is USER_HZ, 100 on every Linux the bench runs on.
const clockTicks = 100

// ReadProc reads /proc/<pid>/stat and /proc/<pid>/status (pid 0: this process).
func ReadProc(pid int) (ProcStat, error) {
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	st, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return ProcStat{}, err
	}
	ps := ProcStat{PID: pid}
	// Fields after the command name, which may contain spaces: ") S ppid ...";
	// utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
	i := bytes.LastIndexByte(st, ')')
	if i < 0 {
		return ps, fmt.Errorf("parse %s/stat", dir)
	}
	f := strings.Fields(string(st[i+1:]))
	if len(f) < 13 {
		return ps, fmt.Errorf("parse %s/stat: %d fields", dir, len(f))
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	ps.CPUSeconds = float64(ut+stt) / clockTicks
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return ps, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			ps.RSSBytes = kb * 1024
		}
	}
	return ps, nil
}

// Descendants returns the pids of every descendant of pid (children, grandchildren,
// …), e.g. the PostgreSQL processes of a talim dev child. It reads /proc once.
func Descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	kids := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(st[i+1:]))
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		kids[pp] = append(kids[pp], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 && len(out) < 10_000 {
		p := queue[0]
		queue = queue[1:]
		for _, k := range kids[p] {
			out = append(out, k)
			queue = append(queue, k)
		}
	}
	return out
}

// ReadTree sums ReadProc over pids (missing processes are skipped).
func ReadTree(pids []int) ProcStat {
	var t ProcStat
	for _, p := range pids {
		if ps, err := ReadProc(p); err == nil {
			t.CPUSeconds += ps.CPUSeconds
			t.RSSBytes += ps.RSSBytes
		}
	}
	return t
}

// FindByCmdline returns the pids whose command line contains substr (e.g. the
// PostgreSQL processes of a bench data dir: pg_ctl daemonises them, so they are not
// talim dev's descendants).
func FindByCmdline(substr string) []int {
	if substr == "" {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(substr)) && len(out) < 1000 {
			out = append(out, p)
		}
	}
	return out
}
