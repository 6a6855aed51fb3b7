// Web Push end to end against a real `talim dev` (scripts/jstest.sh starts one):
// a browser's subscription is made here with Node's crypto, registered with the
// register-push-subscription event, the user goes offline, `talim notify` sends a
// notification, and an HTTP push endpoint on loopback receives the push. The
// endpoint checks the VAPID token (ES256 signature by k, aud, exp, sub) and
// decrypts the aes128gcm body with the npm http_ece package — an implementation
// independent of pkg/webpush (docs/protocol.md "Web Push").
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createECDH, createPublicKey, randomBytes, verify } from "node:crypto";
import { createServer } from "node:http";
import ece from "http_ece";
import { WebSocket } from "ws";
import { TalimClient } from "../static/talim-client.js";

const BASE = process.env.TALIM_E2E_URL;
const TALIM = process.env.TALIM_E2E_TALIM || "talim";
const skip = BASE && process.env.TALIM_DATA_DIR ? false : "set TALIM_E2E_URL and TALIM_DATA_DIR (scripts/jstest.sh does)";
const silent = { log() {}, warn() {}, error() {} };
const b64u = (buf) => Buffer.from(buf).toString("base64url");

function run(args) {
  return new Promise((resolve, reject) => {
    execFile(TALIM, args, { env: process.env, timeout: 20000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${TALIM} ${args[0]}: ${err.message}\n${stderr}`));
      else resolve(String(stdout).trim());
    });
  });
}

/** Check a "vapid t=<JWT>, k=<key>" header as a push service does (RFC 8292). */
function checkVapid(header, audience, vapidPublicKey) {
  const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(header || "");
  assert.ok(m, `Authorization ${header}`);
  const [, jwt, k] = m;
  assert.equal(k, vapidPublicKey, "k is the key the browser subscribed with");
  const raw = Buffer.from(k, "base64url");
  assert.equal(raw.length, 65);
  const key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: b64u(raw.subarray(1, 33)), y: b64u(raw.subarray(33)) }, format: "jwk" });
  const [h, p, s] = jwt.split(".");
  assert.equal(JSON.parse(Buffer.from(h, "base64url")).alg, "ES256");
  assert.ok(verify("sha256", Buffer.from(`${h}.${p}`), { key, dsaEncoding: "ieee-p1363" }, Buffer.from(s, "base64url")), "JWT signature");
  const claims = JSON.parse(Buffer.from(p, "base64url"));
  const now = Date.now() / 1000;
  assert.equal(claims.aud, audience);
  assert.ok(claims.exp > now && claims.exp <= now + 24 * 3600, `exp ${claims.exp}`);
  assert.match(claims.sub, /^(mailto:|https:)/);
}

const servers = [];
after(() => servers.forEach((s) => s.close()));

test("a notification reaches an offline user's browser as an encrypted, VAPID-signed push", { skip, timeout: 90000 }, async () => {
  const user = `push-${Date.now().toString(36)}`;
  const token = await run(["token", "--user", user, "--name", "Push Test", "--roles", "student", "--ttl", "10m"]);

  // The browser: a P-256 key pair and an auth secret, as PushManager makes them.
  const ua = createECDH("prime256v1");
  ua.generateKeys();
  const auth = randomBytes(16);
  const pushes = [];
  let wake;
  const srv = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      try {
        checkVapid(req.headers.authorization, `http://127.0.0.1:${srv.address().port}`, vapidKey);
        assert.equal(req.headers["content-encoding"], "aes128gcm");
        assert.ok(Number(req.headers.ttl) > 0, `TTL ${req.headers.ttl}`);
        assert.match(req.headers.topic || "", /^[A-Za-z0-9_-]{1,32}$/);
        const plain = ece.decrypt(Buffer.concat(chunks), { version: "aes128gcm", privateKey: ua, authSecret: auth });
        pushes.push({ payload: JSON.parse(plain.toString("utf8")), urgency: req.headers.urgency });
        res.writeHead(201).end();
      } catch (err) {
        pushes.push({ error: err });
        res.writeHead(400).end();
      }
      wake?.();
    });
  });
  servers.push(srv);
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const endpoint = `http://127.0.0.1:${srv.address().port}/push/${user}`;

  const client = new TalimClient({ url: BASE, getToken: async () => token, WebSocket, logger: silent });
  await client.connect();
  const { vapidPublicKey: vapidKey } = await client.request("get-push-config", {});
  assert.ok(vapidKey, "talim dev serves a VAPID key");
  await assert.rejects(client.request("register-push-subscription", { endpoint: { $gt: "" }, keys: {} }), /wrong type|bad/i);
  const reg = await client.request("register-push-subscription", { endpoint, keys: { p256dh: b64u(ua.getPublicKey()), auth: b64u(auth) } });
  assert.match(reg.id, /^ps_/);
  client.disconnect();

  // Presence keeps a user online for a grace period after the last socket closes:
  // send until a push arrives (bounded), one notification every 2 s.
  const title = `push-e2e-${user}`;
  const deadline = Date.now() + 60000;
  while (!pushes.length && Date.now() < deadline) {
    await run(["notify", "--to", user, "--title", title, "--body", "from the JS test", "--priority", "high"]);
    await new Promise((r) => {
      wake = r;
      setTimeout(r, 2000);
    });
  }
  assert.ok(pushes.length > 0, "no push within 60 s");
  for (const p of pushes) if (p.error) throw p.error;
  const { payload, urgency } = pushes[0];
  assert.equal(payload.kind, "notification");
  assert.equal(payload.title, title);
  assert.equal(payload.body, "from the JS test");
  assert.equal(urgency, "high");
  assert.match(payload.url, /^\/\?inbox=/);
});
