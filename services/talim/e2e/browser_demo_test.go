package e2e

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/talim/realtime/services/notification"
)

// Two users chat through the demo page in two browser contexts: each sees the other's
// messages, the typing indicator, read receipts, presence dots, edit and delete, and
// the unread badge of another room.
func TestBrowserChat(t *testing.T) {
	start := time.Now()
	st := newStack(t, nil)
	b := newBrowser(t)
	teacher := b.open("t1", pageURL(st.EdgeURL, "t1"))
	student := b.open("s1", pageURL(st.EdgeURL, "s1"))
	teacher.waitRoomOpen("room-123")
	student.waitRoomOpen("room-123")

	// The user picker lists the demo users from /dev/tokens; the rooms come from list-rooms.
	teacher.waitJS("user picker on t1", `document.querySelector('[data-testid=user-picker]').value === 't1' && document.querySelectorAll('[data-testid=user-picker] option').length === 3`)
	teacher.waitJS("t1's rooms", `['room-123', 'class-7a', 'announcements'].every(r => document.querySelector('[data-testid="room-' + r + '"]'))`)

	// s1 types: t1 sees the typing indicator; s1 sends: t1 sees the message.
	student.run("type", chromedp.SendKeys(chromedp.CSS(`[data-testid=message-input]`), "hello Ms. Yusuf"))
	teacher.waitJS("typing indicator", `document.querySelector('[data-testid=typing]').textContent.includes('Bilal Ahmed is typing')`)
	student.run("send", chromedp.Click(chromedp.CSS(`[data-testid=send-button]`)))
	teacher.waitMessage("s1", "hello Ms. Yusuf")
	student.waitMessage("s1", "hello Ms. Yusuf")
	teacher.waitJS("typing indicator cleared", `document.querySelector('[data-testid=typing]').textContent === ''`)

	teacher.say("welcome, Bilal")
	student.waitMessage("t1", "welcome, Bilal")

	// Read receipts: s1 read t1's message (mark-message-read) → t1 sees "Read by".
	teacher.waitJS("read receipt", `[...document.querySelectorAll('[data-testid=message][data-sender=t1]')].some(li => li.querySelector('[data-testid=receipt]')?.textContent.includes('Read by Bilal Ahmed'))`)
	// Presence dots of the people seen in the room.
	teacher.waitJS("s1 online", `document.querySelector('[data-testid=presence-s1]')?.dataset.presence === 'online'`)
	student.waitJS("t1 online", `document.querySelector('[data-testid=presence-t1]')?.dataset.presence === 'online'`)

	// Edit: t1 edits its message in place; s1 sees the new text marked (edited).
	teacher.run("edit",
		chromedp.Click(chromedp.CSS(`[data-testid=message][data-sender=t1] [data-testid=edit]`)),
		chromedp.WaitVisible(chromedp.CSS(`textarea.msg-edit`)),
		chromedp.SetValue(chromedp.CSS(`textarea.msg-edit`), "welcome to class, Bilal"),
		chromedp.SendKeys(chromedp.CSS(`textarea.msg-edit`), "\r"),
	)
	student.waitMessage("t1", "welcome to class, Bilal")
	student.waitJS("(edited) mark", `[...document.querySelectorAll('[data-testid=message][data-sender=t1]')].some(li => li.querySelector('.msg-meta').textContent.includes('(edited)'))`)

	// Delete: a tombstone on both pages.
	teacher.run("delete",
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.CSS(`[data-testid=message][data-sender=t1] [data-testid=delete]`)),
	)
	student.waitJS("tombstone", `[...document.querySelectorAll('[data-testid=message][data-sender=t1]')].some(li => li.classList.contains('deleted') && li.textContent.includes('Message deleted'))`)
	teacher.waitJS("tombstone (sender)", `[...document.querySelectorAll('[data-testid=message][data-sender=t1]')].some(li => li.classList.contains('deleted'))`)

	// A message in another room shows up as an unread badge (room-updated).
	eval[float64](student, "s1 posts in class-7a", `window.talim.sendMessage('class-7a', 'homework question').then(m => m.seq)`)
	teacher.waitJS("unread badge on class-7a", `document.querySelector('[data-testid="room-class-7a"]').dataset.unread === '1' && document.querySelector('[data-testid="room-class-7a"] [data-testid=unread]')?.textContent === '1'`)
	teacher.run("open class-7a", chromedp.Click(chromedp.CSS(`[data-testid="room-class-7a"]`)))
	teacher.waitRoomOpen("class-7a")
	teacher.waitMessage("s1", "homework question")
	teacher.waitJS("badge cleared", `document.querySelector('[data-testid="room-class-7a"]').dataset.unread === '0'`)

	// Both pages saw each message exactly once, in seq order.
	for _, p := range []*page{student} {
		msgs := p.messages()
		seen := map[string]bool{}
		for i, m := range msgs {
			if seen[m.ID] {
				t.Errorf("%s: message %s shown twice", p.name, m.ID)
			}
			seen[m.ID] = true
			if i > 0 && m.Seq <= msgs[i-1].Seq {
				t.Errorf("%s: seq %d after %d", p.name, m.Seq, msgs[i-1].Seq)
			}
		}
		if len(msgs) != 2 {
			t.Errorf("%s: %d messages in room-123, want 2: %+v", p.name, len(msgs), msgs)
		}
	}
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// A notification sent through the real gRPC API (what `talim notify` does) appears as a
// toast and in the inbox; mark-all-read and acknowledge work from the page.
func TestBrowserNotificationToast(t *testing.T) {
	start := time.Now()
	st := newStack(t, nil)
	b := newBrowser(t)
	student := b.open("s1", pageURL(st.EdgeURL, "s1"))
	student.waitRoomOpen("room-123")
	student.waitJS("empty inbox", `document.querySelector('[data-testid=inbox-count]').hidden`)

	notify := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		var out, errb bytes.Buffer
		args = append([]string{"--to", "s1", "--addr", st.GRPCAddr, "--token", st.ServiceToken}, args...)
		if code := notification.NotifyCommand(ctx, args, &out, &errb); code != 0 {
			t.Fatalf("talim notify %v: exit %d: %s", args, code, errb.String())
		}
		t.Logf("talim notify: %s", bytes.TrimSpace(out.Bytes()))
	}
	notify("--title", "Assignment due", "--body", "Read chapter 3 by Friday", "--category", "assignment")
	student.waitJS("toast", `[...document.querySelectorAll('[data-testid=toast]')].some(t => t.textContent.includes('Assignment due') && t.textContent.includes('Read chapter 3 by Friday'))`)
	student.waitJS("inbox count 1", `!document.querySelector('[data-testid=inbox-count]').hidden && document.querySelector('[data-testid=inbox-count]').textContent === '1'`)

	notify("--title", "Fire drill at 11:00", "--priority", "high", "--require-ack")
	student.waitJS("high-priority toast", `[...document.querySelectorAll('[data-testid=toast].high')].some(t => t.textContent.includes('Fire drill'))`)
	student.waitJS("inbox count 2", `document.querySelector('[data-testid=inbox-count]').textContent === '2'`)

	student.run("open inbox", chromedp.Click(chromedp.CSS(`[data-testid=inbox-toggle]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=inbox]`)))
	student.waitJS("two notifications, newest first", `(() => { const n = [...document.querySelectorAll('[data-testid=notification]')]; return n.length === 2 && n[0].textContent.includes('Fire drill') && n[1].textContent.includes('Assignment due'); })()`)
	student.run("acknowledge", chromedp.Click(chromedp.Search(`//li[@data-testid="notification"][contains(., "Fire drill")]//button[text()="Acknowledge"]`)))
	student.waitJS("acknowledged", `[...document.querySelectorAll('[data-testid=notification]')].some(n => n.textContent.includes('Fire drill') && n.textContent.includes('✓ acknowledged'))`)
	student.waitJS("inbox count 1 after ack", `document.querySelector('[data-testid=inbox-count]').textContent === '1'`)
	student.run("mark all read", chromedp.Click(chromedp.CSS(`[data-testid=mark-all-read]`)))
	student.waitJS("inbox count cleared", `document.querySelector('[data-testid=inbox-count]').hidden && !document.querySelector('[data-testid=notification].unread')`)

	// The inbox survives a reload (list-notifications), with nothing unread.
	student.run("reload", chromedp.Reload())
	student.waitRoomOpen("room-123")
	student.run("open inbox again", chromedp.Click(chromedp.CSS(`[data-testid=inbox-toggle]`)))
	student.waitJS("inbox after reload", fmt.Sprintf(`document.querySelectorAll('[data-testid=notification]').length === %d && document.querySelector('[data-testid=inbox-count]').hidden`, 2))
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}
