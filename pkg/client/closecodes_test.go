package client

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/talim/realtime/pkg/protocol"
)

// closeCodeTable is services/edge/web/kit/close-codes.json: the reconnect rules that
// generate the JavaScript client's (src/client/closecodes.generated.ts). This test holds
// the Go client's terminal() to the same table, so the two clients cannot drift.
type closeCodeTable struct {
	Close []struct {
		Code      int    `json:"code"`
		Name      string `json:"name"`
		Reconnect string `json:"reconnect"`
	} `json:"close"`
	Handshake []struct {
		Status    int    `json:"status"`
		Reconnect string `json:"reconnect"`
	} `json:"handshake"`
}

func loadCloseCodeTable(t *testing.T) closeCodeTable {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "services", "edge", "web", "kit", "close-codes.json"))
	if err != nil {
		t.Fatalf("read the shared close-code table: %v", err)
	}
	var tab closeCodeTable
	if err := json.Unmarshal(b, &tab); err != nil {
		t.Fatalf("parse close-codes.json: %v", err)
	}
	if len(tab.Close) == 0 || len(tab.Handshake) == 0 {
		t.Fatal("close-codes.json: empty table")
	}
	return tab
}

// wantTerminal is the table's rule as terminal(err, refreshable) must answer it.
func wantTerminal(t *testing.T, rule string, refreshable bool) bool {
	t.Helper()
	switch rule {
	case "yes":
		return false
	case "never":
		return true
	case "new-token":
		return !refreshable
	}
	t.Fatalf("close-codes.json: unknown reconnect rule %q", rule)
	return false
}

func TestCloseCodeTableMatchesTerminal(t *testing.T) {
	tab := loadCloseCodeTable(t)
	for _, row := range tab.Close {
		for _, refreshable := range []bool{false, true} {
			got := terminal(&CloseError{Code: row.Code}, refreshable)
			if want := wantTerminal(t, row.Reconnect, refreshable); got != want {
				t.Errorf("close %d (%s) refreshable=%v: terminal()=%v, table says reconnect %q", row.Code, row.Name, refreshable, got, row.Reconnect)
			}
		}
	}
	for _, row := range tab.Handshake {
		for _, refreshable := range []bool{false, true} {
			got := terminal(&HandshakeError{Status: row.Status}, refreshable)
			if want := wantTerminal(t, row.Reconnect, refreshable); got != want {
				t.Errorf("handshake %d refreshable=%v: terminal()=%v, table says reconnect %q", row.Status, refreshable, got, row.Reconnect)
			}
		}
	}
}

// Every close code the Go side names (pkg/client and pkg/protocol) is in the table
// under the same number, so a new code cannot be added on one side only.
func TestCloseCodeTableCoversGoConstants(t *testing.T) {
	tab := loadCloseCodeTable(t)
	byName := map[string]int{}
	codes := map[int]bool{}
	for _, row := range tab.Close {
		byName[row.Name] = row.Code
		codes[row.Code] = true
	}
	client := map[string]int{
		"CloseNormal": CloseNormal, "CloseGoingAway": CloseGoingAway, "CloseUnsupportedData": CloseUnsupportedData,
		"CloseInvalidPayload": CloseInvalidPayload, "ClosePolicyViolation": ClosePolicyViolation,
		"CloseMessageTooBig": CloseMessageTooBig, "CloseInternal": CloseInternal, "CloseServiceRestart": CloseServiceRestart,
		"CloseTokenExpired": CloseTokenExpired, "CloseSlowConsumer": CloseSlowConsumer, "CloseTooManyConnection": CloseTooManyConnection,
	}
	for name, code := range client {
		if got, ok := byName[name]; !ok || got != code {
			t.Errorf("pkg/client %s = %d; close-codes.json has %d (present %v)", name, code, got, ok)
		}
	}
	proto := []int{
		protocol.CloseNormal, protocol.CloseGoingAway, protocol.CloseUnsupportedData, protocol.CloseInvalidPayload,
		protocol.ClosePolicyViolation, protocol.CloseTooBig, protocol.CloseInternalError, protocol.CloseServiceRestart,
		protocol.CloseTokenExpired, protocol.CloseSlowConsumer, protocol.CloseTooManyConns,
	}
	for _, code := range proto {
		if !codes[code] {
			t.Errorf("pkg/protocol close code %d is not in close-codes.json", code)
		}
	}
	// The generated TypeScript is the table (scripts/build.mjs writes it; make kit-check
	// fails when it is stale): compare the rules it lists.
	ts, err := os.ReadFile(filepath.Join("..", "..", "services", "edge", "web", "kit", "src", "client", "closecodes.generated.ts"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, row := range tab.Close {
		want = append(want, jsRule(row.Code, row.Reconnect))
	}
	for _, row := range tab.Handshake {
		want = append(want, jsRule(row.Status, row.Reconnect))
	}
	var got []string
	for _, line := range strings.Split(string(ts), "\n") {
		if strings.HasPrefix(line, "  [") {
			got = append(got, line)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("closecodes.generated.ts is stale (run npm run build in services/edge/web/kit):\n got %q\nwant %q", got, want)
	}
}

func jsRule(code int, rule string) string {
	return "  [" + strconv.Itoa(code) + ", " + strconv.Quote(rule) + "],"
}
