// The demo page, built only from @talim/realtime's React components: the status (🟢 🟡 ⚫
// 🔴), rooms, ChatRoom, the inbox and toasts. Served by the edge at /kit/.
//
//   /kit/?user=t1        sign in as a demo user (talim dev's /dev/tokens)
//   /kit/?token=<JWT>    use this token (a bad one shows 🔴 "invalid token")
//   /kit/?room=class-7a  open this room first; &debug logs with the seed's prefixes
import { StrictMode, useCallback, useEffect, useMemo, useState } from "react";
import { createRoot } from "react-dom/client";
import {
  ChatRoom,
  NotificationInbox,
  NotificationToaster,
  WebSocketProvider,
  WebSocketStatus,
  useWebSocketContext,
  type TalimClient,
} from "@talim/realtime/react";
import type { RoomSummary } from "@talim/realtime";
import "@talim/realtime/styles.css";
import "./demo.css";

interface DemoUser {
  userId: string;
  name: string;
  roles: string[];
  token: string;
}

const params = new URLSearchParams(location.search);
const WS_URL = params.get("ws") || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

/** What tests and curious developers can reach from the console. */
interface DemoHandle {
  client: TalimClient | null;
  /** Forget the ?token= override: the next getToken returns the demo user's token. */
  useDemoToken(): void;
}
declare global {
  interface Window {
    talim: TalimClient | null;
    talimDemo: DemoHandle;
  }
}

let tokenOverride: string | null = params.get("token");
window.talimDemo = {
  client: null,
  useDemoToken() {
    tokenOverride = null;
  },
};

async function loadUsers(): Promise<DemoUser[]> {
  try {
    const res = await fetch("/dev/tokens", { cache: "no-store" });
    if (!res.ok) return [];
    const body = (await res.json()) as { users?: DemoUser[] };
    return body.users || [];
  } catch {
    return [];
  }
}

function Rooms({ current, onOpen }: { current: string; onOpen: (roomId: string) => void }) {
  const { isConnected, listRooms, onRoomUpdated, client } = useWebSocketContext();
  const [rooms, setRooms] = useState<RoomSummary[]>([]);
  useEffect(() => {
    window.talim = client;
    window.talimDemo.client = client;
  }, [client]);
  useEffect(() => {
    if (!isConnected) return;
    listRooms().then(setRooms, () => {});
  }, [isConnected, listRooms]);
  useEffect(
    () =>
      onRoomUpdated((u) =>
        setRooms((list) => list.map((r) => (r.roomId === u.roomId ? { ...r, lastSeq: u.lastSeq, unread: r.roomId === current ? 0 : r.unread + 1 } : r))),
      ),
    [onRoomUpdated, current],
  );
  return (
    <nav className="demo-rooms" aria-label="Rooms">
      <ul>
        {rooms.map((r) => (
          <li key={r.roomId}>
            <button
              type="button"
              className="talim-button"
              aria-current={r.roomId === current ? "page" : undefined}
              data-testid={`room-${r.roomId}`}
              data-unread={r.roomId === current ? 0 : r.unread}
              onClick={() => {
                setRooms((list) => list.map((x) => (x.roomId === r.roomId ? { ...x, unread: 0 } : x)));
                onOpen(r.roomId);
              }}
            >
              {r.name || r.roomId}
              {r.roomId !== current && r.unread > 0 && (
                <span className="talim-badge" data-testid="unread">
                  {r.unread}
                </span>
              )}
            </button>
          </li>
        ))}
      </ul>
    </nav>
  );
}

function App() {
  const [users, setUsers] = useState<DemoUser[]>([]);
  const [userId, setUserId] = useState<string | null>(params.get("user"));
  const [room, setRoom] = useState(params.get("room") || "room-123");
  const [inboxOpen, setInboxOpen] = useState(false);

  useEffect(() => {
    void loadUsers().then((list) => {
      setUsers(list);
      setUserId((cur) => cur ?? (tokenOverride ? "token" : list[0]?.userId ?? null));
    });
  }, []);

  const getToken = useCallback(async () => {
    if (tokenOverride) return tokenOverride;
    // A fresh token from the dev endpoint every time (it is what a login API would do).
    const list = await loadUsers();
    const u = list.find((x) => x.userId === userId);
    if (!u) throw new Error(`no demo user ${userId}`);
    return u.token;
  }, [userId]);

  const names = useMemo(() => Object.fromEntries(users.map((u) => [u.userId, u.name])), [users]);
  const me = users.find((u) => u.userId === userId);

  return (
    <WebSocketProvider url={WS_URL} user={userId ? { _id: userId } : null} getToken={getToken} debug={params.has("debug")}>
      <header className="demo-header">
        <h1>Talim Realtime</h1>
        <WebSocketStatus />
        <label>
          Signed in as{" "}
          <select data-testid="user-picker" value={userId ?? ""} onChange={(e) => setUserId(e.target.value || null)}>
            <option value="">— signed out —</option>
            {tokenOverride && <option value="token">token from the URL</option>}
            {users.map((u) => (
              <option key={u.userId} value={u.userId}>
                {u.name} ({u.userId})
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="talim-button" data-testid="inbox-toggle" aria-expanded={inboxOpen} onClick={() => setInboxOpen((o) => !o)}>
          Inbox
        </button>
      </header>
      <main className="demo-main">
        {userId ? (
          <>
            <Rooms current={room} onOpen={setRoom} />
            <ChatRoom key={room} roomId={room} title={room} names={names} />
            {inboxOpen && <NotificationInbox />}
          </>
        ) : (
          <p>Pick a user to sign in.</p>
        )}
      </main>
      <NotificationToaster />
      {me && <footer className="demo-footer">{me.roles.join(", ")}</footer>}
    </WebSocketProvider>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
