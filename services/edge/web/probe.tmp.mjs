import { WebSocket } from "ws";
const base = "http://127.0.0.1:18280";
const users = (await (await fetch(base + "/dev/tokens")).json()).users;
const tok = users.find(u => u.userId === process.argv[2]).token;
const ws = new WebSocket("ws://127.0.0.1:18280/ws?token=" + tok);
const cmds = JSON.parse(process.argv[3]);
ws.on("message", (d) => console.log(String(d).slice(0, 600)));
ws.on("open", async () => {
  let id = 1;
  for (const [ev, data] of cmds) { ws.send(JSON.stringify({ event: ev, id: id++, data })); await new Promise(r => setTimeout(r, 300)); }
  setTimeout(() => ws.close(), 800);
});
