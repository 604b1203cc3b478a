// node check.mjs <portA> <portB> <token> <collection>   (also run for apps/directus-12)
//
// A realtime subscriber on each replica, then one item created through replica B's REST API. Exit 0 when
// A's subscriber hears B's create event, 1 when only B's own subscriber does (the replicas are not
// synchronized), 2 when the check itself is broken (no auth, no subscription, B did not hear its own event).
import WebSocket from 'ws';

const [portA, portB, token, collection] = process.argv.slice(2);
const marker = `synchro-${process.pid}-${Date.now()}`;
const WAIT_MS = 15000;

function fail(code, why) {
	console.log(JSON.stringify({ ok: false, why }));
	process.exit(code);
}

// Resolves with a subscriber once Directus has authenticated it and sent the subscription's init event.
function subscriber(port) {
	return new Promise((resolve, reject) => {
		const ws = new WebSocket(`ws://127.0.0.1:${port}/websocket`);
		const heard = [];
		let waiter = null;
		const timer = setTimeout(() => reject(new Error(`no subscription on ${port}`)), WAIT_MS);
		ws.on('error', reject);
		ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', access_token: token })));
		ws.on('message', (raw) => {
			const msg = JSON.parse(raw.toString());
			if (msg.type === 'ping') ws.send(JSON.stringify({ type: 'pong' }));
			if (msg.type === 'auth' && msg.status !== 'ok') reject(new Error(`auth on ${port}: ${raw}`));
			if (msg.type === 'auth' && msg.status === 'ok') {
				ws.send(JSON.stringify({ type: 'subscribe', collection, uid: 'synchro', query: { fields: ['*'] } }));
			}
			if (msg.type === 'subscription' && msg.event === 'init') {
				clearTimeout(timer);
				resolve({ ws, heard, hears: (deadline) => hears(deadline) });
			}
			if (msg.type === 'subscription' && msg.event === 'create') {
				heard.push(...msg.data.map((item) => item.title));
				if (waiter && heard.includes(marker)) waiter();
			}
		});
		function hears(deadline) {
			return new Promise((done) => {
				if (heard.includes(marker)) return done(true);
				const t = setTimeout(() => done(false), Math.max(0, deadline - Date.now()));
				waiter = () => (clearTimeout(t), done(true));
			});
		}
	});
}

let a, b;
try {
	[a, b] = await Promise.all([subscriber(portA), subscriber(portB)]);
} catch (e) {
	fail(2, String(e));
}

const created = await fetch(`http://127.0.0.1:${portB}/items/${collection}`, {
	method: 'POST',
	headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
	body: JSON.stringify({ title: marker }),
});
if (!created.ok) fail(2, `create on ${portB}: ${created.status} ${await created.text()}`);

const deadline = Date.now() + WAIT_MS;
if (!(await b.hears(deadline))) fail(2, `replica B (${portB}) did not hear its own create event`);
const aHeard = await a.hears(deadline);
console.log(JSON.stringify({ ok: aHeard, marker, heardOnA: a.heard, heardOnB: b.heard }));
a.ws.close();
b.ws.close();
process.exit(aHeard ? 0 : 1);
