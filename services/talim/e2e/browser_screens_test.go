package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/talim/realtime/services/notification"
)

// TestBrowserScreenshots is a tool rather than a check: with TALIM_SCREENSHOTS=<dir> it
// plays a short conversation on the demo page and saves desktop and phone screenshots
// of it, for looking at the page after a change:
//
//	TALIM_SCREENSHOTS=/tmp/shots go test -run BrowserScreenshots ./e2e/
//
// With TALIM_SCREENSHOTS_URL (a running `talim dev`) and TALIM_SCREENSHOTS_GRPC +
// TALIM_SERVICE_TOKEN it uses that stack, else it starts one in-process.
func TestBrowserScreenshots(t *testing.T) {
	dir := os.Getenv("TALIM_SCREENSHOTS")
	if dir == "" {
		t.Skip("set TALIM_SCREENSHOTS=<dir> to save screenshots of the demo page")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	base, grpcAddr, serviceToken := os.Getenv("TALIM_SCREENSHOTS_URL"), os.Getenv("TALIM_SCREENSHOTS_GRPC"), os.Getenv("TALIM_SERVICE_TOKEN")
	if base == "" {
		st := newStack(t, nil)
		base, grpcAddr, serviceToken = st.EdgeURL, st.GRPCAddr, st.ServiceToken
	}
	base = strings.TrimSuffix(base, "/")
	b := newBrowser(t)
	shot := func(p *page, name string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(dir, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("saved %s", path)
	}

	teacher := b.open("t1", pageURL(base, "t1"))
	student := b.open("s1", pageURL(base, "s1"))
	teacher.kitRoomOpen("room-123")
	student.kitRoomOpen("room-123")
	student.kitSay("Good morning! Is the quiz still on Friday?")
	teacher.kitWaitMessage("s1", "Good morning! Is the quiz still on Friday?")
	teacher.kitSay("Yes — chapters 3 and 4. Bring a calculator.")
	student.kitWaitMessage("t1", "Yes — chapters 3 and 4. Bring a calculator.")
	student.kitSay("Thanks!")
	teacher.kitWaitMessage("s1", "Thanks!")
	eval[float64](student, "post in class-7a", `window.talim.sendMessage('class-7a', 'Can we move the study group to 4pm?').then(m => m.seq)`)
	teacher.waitJS("unread badge", `document.querySelector('[data-testid="room-class-7a"]').dataset.unread !== '0'`)
	teacher.waitJS("read receipt", `[...document.querySelectorAll('[data-testid=receipt]')].some(r => r.textContent.includes('Read by'))`)
	student.run("type", chromedp.SendKeys(chromedp.CSS(`[data-testid=message-input]`), "One more question"))
	teacher.waitJS("typing", `document.querySelector('[data-testid=typing]').textContent !== ''`)
	shot(teacher, "desktop-teacher")

	if grpcAddr != "" && serviceToken != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		var out, errb bytes.Buffer
		code := notification.NotifyCommand(ctx, []string{"--to", "s1", "--addr", grpcAddr, "--token", serviceToken,
			"--title", "New assignment", "--body", "Read chapter 3 before Friday's quiz", "--category", "assignment"}, &out, &errb)
		cancel()
		if code != 0 {
			t.Fatalf("notify: %s", errb.String())
		}
		student.waitJS("toast", `document.querySelector('[data-testid=toast]')`)
	}
	shot(student, "desktop-student-toast")
	student.run("open inbox", chromedp.Click(chromedp.CSS(`[data-testid=inbox-toggle]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=inbox]`)))
	shot(student, "desktop-student-inbox")

	phone := b.openPhone("s1-phone", pageURL(base, "s1"))
	phone.kitRoomOpen("room-123")
	phone.waitJS("history", `document.querySelectorAll('[data-testid=message]').length >= 3`)
	shot(phone, "phone-student")
	phone.run("open inbox", chromedp.Click(chromedp.CSS(`[data-testid=inbox-toggle]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=inbox]`)))
	shot(phone, "phone-student-inbox")
	phoneT := b.openPhone("t1-phone", pageURL(base, "t1"))
	phoneT.kitRoomOpen("room-123")
	shot(phoneT, "phone-teacher")

	// An endpoint nobody listens on: ⚫ with the retry countdown and the Retry button.
	dead := b.open("s2-offline", pageURL(base, "s2")+"&ws=ws://"+spareAddr(t)+"/ws")
	dead.waitJS("retrying", `document.querySelector('[data-testid=ws-status]').dataset.status === 'disconnected' && !!document.querySelector('[data-testid=ws-retry-countdown]')`)
	shot(dead, "desktop-offline")
}
