// node check.mjs PORT_A PORT_B DOC: a Y.js update made through replica A must reach a client of replica B.
// Exit 0 when it does within 10 s, 1 when it does not.
import { HocuspocusProvider } from "@hocuspocus/provider";
import WebSocket from "ws";
import * as Y from "yjs";

const [portA, portB, doc] = process.argv.slice(2);
const connect = (port) => new Promise((resolve) => {
  const document = new Y.Doc();
  const provider = new HocuspocusProvider({
    url: `ws://127.0.0.1:${port}`, name: doc, document, WebSocketPolyfill: WebSocket,
    onSynced: () => resolve({ provider, document }),
  });
});
const a = await connect(portA);
const b = await connect(portB);
const value = `hello-${Date.now()}`;
const seen = new Promise((resolve) => {
  const map = b.document.getMap("m");
  map.observe(() => { if (map.get("k") === value) resolve(true); });
});
a.document.getMap("m").set("k", value);
const ok = await Promise.race([seen, new Promise((r) => setTimeout(() => r(false), 10000))]);
console.log(ok ? `replica B saw ${value}` : "replica B never saw the update");
process.exit(ok ? 0 : 1);
