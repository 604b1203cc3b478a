// A minimal Hocuspocus server that takes its Redis settings from the env Synchro's `hocuspocus` preset
// injects (REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_USERNAME, REDIS_PASSWORD, HOCUSPOCUS_REDIS_PREFIX).
// Without REDIS_HOST it runs alone, in memory: the single-replica mode every app starts in.
import { Server } from "@hocuspocus/server";
import { Redis } from "@hocuspocus/extension-redis";

const env = process.env;
const extensions = [];
if (env.REDIS_HOST) {
  extensions.push(new Redis({
    host: env.REDIS_HOST,
    port: Number(env.REDIS_PORT || 6379),
    prefix: env.HOCUSPOCUS_REDIS_PREFIX || "hocuspocus",
    options: {
      db: Number(env.REDIS_DB || 0),
      username: env.REDIS_USERNAME || undefined,
      password: env.REDIS_PASSWORD || undefined,
    },
  }));
}
const mode = extensions.length ? `with Redis ${env.REDIS_HOST}:${env.REDIS_PORT || 6379}` : "in memory";
const server = new Server({ port: Number(env.PORT), address: "127.0.0.1", quiet: true, extensions });
await server.listen();
console.log(`listening on ${env.PORT} ${mode}`);
