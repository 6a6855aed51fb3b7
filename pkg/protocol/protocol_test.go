package protocol

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestCloseCodesDocumented checks that every close code of the table is in the
// "Close codes" section of docs/protocol.md, the client contract.
func TestCloseCodesDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "### Close codes")
	if start < 0 {
		t.Fatal(`docs/protocol.md has no "### Close codes" heading`)
	}
	section := doc[start:]
	if end := strings.Index(section[4:], "\n### "); end >= 0 {
		section = section[:end+4]
	}
	for _, code := range []int{CloseNormal, CloseGoingAway, CloseProtocolError, CloseUnsupportedData, CloseAbnormal,
		CloseInvalidPayload, ClosePolicyViolation, CloseTooBig, CloseInternalError, CloseServiceRestart,
		CloseTokenExpired, CloseSlowConsumer, CloseTooManyConns} {
		if !strings.Contains(section, strconv.Itoa(code)) {
			t.Errorf("close code %d is not in docs/protocol.md \"Close codes\"", code)
		}
	}
}
