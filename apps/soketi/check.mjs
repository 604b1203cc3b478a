// Does an event triggered through replica B's HTTP API reach a Pusher client subscribed on replica A?
//
//   node check.mjs PORT_A PORT_B CHANNEL   (app id, key and secret from SOKETI_DEFAULT_APP_*)
//
// A client subscribes on each replica, then the Pusher server SDK triggers one event through B. B's own client
// must get it (so the HTTP API and the subscription both work); whether A's client gets it is the answer.
// Prints {"a": bool, "b": bool} and exits 0; any other failure exits 1.
import Pusher from "pusher";
import PusherClient from "pusher-js";

const [portA, portB, channel] = process.argv.slice(2);
const app = {
  appId: process.env.SOKETI_DEFAULT_APP_ID,
  key: process.env.SOKETI_DEFAULT_APP_KEY,
  secret: process.env.SOKETI_DEFAULT_APP_SECRET,
};
const HEAR_FOR_MS = 5000; // how long A may take after B heard the event; Redis delivers in milliseconds

function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function subscriber(port) {
  const client = new PusherClient(app.key, {
    cluster: "local", wsHost: "127.0.0.1", wsPort: Number(port), forceTLS: false,
    enabledTransports: ["ws"], disableStats: true,
  });
  const sub = client.subscribe(channel);
  const subscribed = new Promise((resolve, reject) => {
    sub.bind("pusher:subscription_succeeded", resolve);
    sub.bind("pusher:subscription_error", (e) => reject(new Error(`subscription on ${port}: ${JSON.stringify(e)}`)));
  });
  const heard = new Promise((resolve) => sub.bind("synchro-check", (data) => resolve(data)));
  return { client, subscribed, heard };
}

const a = subscriber(portA);
const b = subscriber(portB);
const token = `${Date.now()}-${Math.random()}`;
let result;
try {
  await within(20000, "both subscriptions", Promise.all([a.subscribed, b.subscribed]));
  const api = new Pusher({ ...app, host: "127.0.0.1", port: String(portB), useTLS: false });
  const response = await api.trigger(channel, "synchro-check", { token });
  if (response.status !== 200) throw new Error(`trigger through B answered ${response.status}`);
  const got = await within(20000, "B's own client", b.heard);
  if (got.token !== token) throw new Error(`B's client got ${JSON.stringify(got)}`);
  const atA = await within(HEAR_FOR_MS, "A", a.heard).then((d) => d.token === token, () => false);
  result = { a: atA, b: true };
} catch (e) {
  console.error(String(e));
  process.exitCode = 1;
} finally {
  a.client.disconnect();
  b.client.disconnect();
}
if (result) console.log(JSON.stringify(result));
process.exit(process.exitCode ?? 0);
