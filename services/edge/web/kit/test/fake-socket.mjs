// A fake WebSocket for unit tests of the client: the test plays the server.
export class FakeSocket {
  static instances = [];
  static reset() {
    FakeSocket.instances = [];
  }
  static last() {
    return FakeSocket.instances[FakeSocket.instances.length - 1];
  }
  constructor(url) {
    this.url = new URL(url);
    this.sent = [];
    this.closed = null;
    this.onopen = this.onmessage = this.onerror = this.onclose = null;
    FakeSocket.instances.push(this);
  }
  send(data) {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000, reason = "") {
    this.closed = { code, reason, by: "client" };
  }
  // ---- server side
  open() {
    this.onopen?.({});
  }
  push(event, data, id) {
    this.onmessage?.({ data: JSON.stringify(id == null ? { event, data } : { event, data, id }) });
  }
  connected(userId = "u1") {
    this.open();
    this.push("connected", { userId, connectionId: "c_1", serverTime: new Date().toISOString(), pingIntervalMs: 25000 });
  }
  /** Ack the last command named event with data. */
  ack(event, data = {}) {
    const cmd = [...this.sent].reverse().find((c) => c.event === event);
    if (!cmd) throw new Error(`no ${event} command sent`);
    this.push("ack", data, cmd.id);
  }
  serverClose(code, reason = "") {
    this.closed = { code, reason, by: "server" };
    this.onclose?.({ code, reason });
  }
  /** A refused upgrade as a browser reports it: error, then close 1006, never open. */
  refuse() {
    this.onerror?.({ type: "error" });
    this.closed = { code: 1006, reason: "", by: "server" };
    this.onclose?.({ code: 1006, reason: "" });
  }
}

export async function waitFor(pred, what, timeoutMs = 3000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
