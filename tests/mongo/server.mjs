// SPDX-License-Identifier: BSD-3-Clause
// A MongoDB-wire server for the storage_mongodb tests: CongoDB (from
// @push.rocks/smartmongo), in memory, on 127.0.0.1.
//
//   node server.mjs [--port N] [--exit-on-stdin-eof]
//
// --port 0 (the default) takes a free port.  Prints "ready PORT" on stdout
// once it accepts connections.  Stops on SIGTERM or SIGINT, and with
// --exit-on-stdin-eof also when its standard input closes (so a test
// program that dies does not leave it behind).
//
// Limits the tests design around (see /work/shared/TOOLCHAIN.md): no change
// streams, no tailable cursors, unique indexes are not enforced, only
// ObjectId _id values, and transactions are accepted but not isolated.

// Deep import: the package root pulls in the mongod launcher we do not have.
import { CongoServer } from '@push.rocks/smartmongo/dist_ts/congodb/index.js';
import { HelloHandler } from '@push.rocks/smartmongo/dist_ts/congodb/server/handlers/HelloHandler.js';

function arg(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

// Pooled libmongoc clients poll with "awaitable hello" (topologyVersion +
// maxAwaitTimeMS) and expect the server to hold the reply; CongoDB answers
// at once, which makes them spin.  Hold it as a real server would.
const plainHello = HelloHandler.prototype.handle;
HelloHandler.prototype.handle = async function (context) {
  const cmd = context.command || {};
  const wait = Number(cmd.maxAwaitTimeMS);
  if (cmd.topologyVersion && Number.isFinite(wait) && wait > 0)
    await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 10000)));
  return plainHello.call(this, context);
};

const port = Number(arg('--port') ?? 0);
const server = new CongoServer({ port, host: '127.0.0.1', storage: 'memory' });

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try {
    await server.stop();
  } finally {
    process.exit(0);
  }
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (process.argv.includes('--exit-on-stdin-eof')) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}

try {
  await server.start();
} catch (e) {
  console.error(`mongo test server: cannot listen on 127.0.0.1:${port}: ${e.message}`);
  process.exit(1);
}
process.stdout.write(`ready ${server.server.address().port}\n`);
