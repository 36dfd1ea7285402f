#!/usr/bin/env node
// Starts an in-memory PLC directory and the reference Bluesky PDS on loopback,
// for duress-watcher's tests. Nothing here talks to the outside network.
//
// Usage:
//   node start-pds.mjs --data-dir DIR [--pds-port N] [--plc-port N]
// (or the env vars PDS_DATA_DIRECTORY, PDS_PORT, PLC_PORT).
//
// Prints exactly one line starting with {"event":"ready" on stdout once both
// servers accept connections, e.g.
//   {"event":"ready","pds":"http://localhost:2583","plc":"http://localhost:2582",...}
// On a startup failure it prints {"event":"error","message":...} and exits 1.
// Diagnostics go to stderr. It shuts down on SIGTERM/SIGINT, and when its stdin
// (if it is a pipe) closes, so a killed parent leaves no orphan behind.
//
// State survives a restart on the same data dir: the PDS keeps its SQLite
// databases and blobs there, this script keeps its secrets in secrets.json and
// the PLC operations in plc-ops.jsonl (replayed into the in-memory PLC on start).
// Restart with the same ports: the DID documents name http://localhost:PDS_PORT.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const HOST = '127.0.0.1';
const SHUTDOWN_GRACE_MS = 5000;

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unexpected argument: ${a}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`missing value for --${m[1]}`);
    out[m[1]] = value;
  }
  return out;
}

function parsePort(value, name) {
  if (value === undefined || value === '') return 0;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`bad ${name}: ${value}`);
  return n;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function log(...args) {
  process.stderr.write(`[start-pds] ${args.join(' ')}\n`);
}

function loadOrCreateSecrets(file) {
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'));
  const hex = (n) => randomBytes(n).toString('hex');
  const secrets = {
    jwtSecret: hex(32),
    adminPassword: hex(16),
    dpopSecret: hex(32),
    plcRotationKeyK256PrivateKeyHex: hex(32),
  };
  fs.writeFileSync(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
  return secrets;
}

// Wraps the PLC's in-memory database so that every accepted operation is also
// appended to a file, and replays that file on start.
async function persistPlcOps(db, file) {
  let replayed = 0;
  if (fs.existsSync(file)) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        log(`skipping a torn line in ${file}`);
        continue;
      }
      await db.validateAndAddOp(entry.did, entry.operation);
      replayed++;
    }
  }
  const original = db.validateAndAddOp.bind(db);
  db.validateAndAddOp = async (did, operation) => {
    await original(did, operation);
    fs.appendFileSync(file, JSON.stringify({ did, operation }) + '\n');
  };
  return replayed;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const dataDir = path.resolve(args['data-dir'] ?? process.env.PDS_DATA_DIRECTORY ?? '');
  if (!args['data-dir'] && !process.env.PDS_DATA_DIRECTORY) {
    throw new Error('give --data-dir DIR (or PDS_DATA_DIRECTORY)');
  }
  fs.mkdirSync(path.join(dataDir, 'blobs'), { recursive: true });
  let pdsPort = parsePort(args['pds-port'] ?? process.env.PDS_PORT, 'pds port');
  let plcPort = parsePort(args['plc-port'] ?? process.env.PLC_PORT, 'plc port');
  if (pdsPort === 0) pdsPort = await freePort();

  // Loggers read these at import time, so set them before the dynamic imports.
  // Logs never go to stdout: stdout carries the ready line.
  process.env.LOG_ENABLED ??= 'false';
  if (/^(true|t|1)$/i.test(process.env.LOG_ENABLED) && !process.env.LOG_DESTINATION) {
    process.env.LOG_DESTINATION = '/dev/stderr';
  }

  const plcMod = await import('@did-plc/server');
  const { PlcServer, Database: PlcDatabase } = plcMod.default ?? plcMod;
  const pdsMod = await import('@atproto/pds');
  const { PDS, envToCfg, envToSecrets, readEnv } = pdsMod;

  const plcDb = PlcDatabase.mock();
  const replayed = await persistPlcOps(plcDb, path.join(dataDir, 'plc-ops.jsonl'));
  const plc = PlcServer.create({ db: plcDb, port: plcPort });
  // PlcServer.start() and PDS.start() call app.listen(port) without a host,
  // which would bind every interface: pin them to loopback.
  bindLoopback(plc.app);
  const plcServer = await plc.start();
  plcPort = plcServer.address().port;
  const plcUrl = `http://localhost:${plcPort}`;

  const secrets = loadOrCreateSecrets(path.join(dataDir, 'secrets.json'));
  const fixed = {
    PDS_HOSTNAME: 'localhost',
    PDS_PORT: String(pdsPort),
    PDS_DATA_DIRECTORY: dataDir,
    PDS_BLOBSTORE_DISK_LOCATION: path.join(dataDir, 'blobs'),
    PDS_DID_PLC_URL: plcUrl, // must be a host name: an IP address is refused
    PDS_JWT_SECRET: secrets.jwtSecret,
    PDS_ADMIN_PASSWORD: secrets.adminPassword,
    PDS_DPOP_SECRET: secrets.dpopSecret,
    PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: secrets.plcRotationKeyK256PrivateKeyHex,
    PDS_CRAWLERS: '',
  };
  const defaults = {
    PDS_INVITE_REQUIRED: 'false',
    PDS_DEV_MODE: 'true',
    PDS_RATE_LIMITS_ENABLED: 'false',
  };
  Object.assign(process.env, fixed);
  for (const [k, v] of Object.entries(defaults)) process.env[k] ??= v;
  // No AppView, no mod service, no report service: a bare PDS.
  for (const k of ['PDS_BSKY_APP_VIEW_URL', 'PDS_BSKY_APP_VIEW_DID', 'PDS_MOD_SERVICE_URL',
    'PDS_MOD_SERVICE_DID', 'PDS_REPORT_SERVICE_URL', 'PDS_REPORT_SERVICE_DID']) {
    delete process.env[k];
  }

  const env = readEnv();
  const pds = await PDS.create(envToCfg(env), envToSecrets(env));
  bindLoopback(pds.app);
  await pds.start();

  let stopping = null;
  const shutdown = (why) => {
    if (stopping) return stopping;
    log(`shutting down (${why})`);
    const hardStop = setTimeout(() => {
      log('graceful shutdown timed out; exiting');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    hardStop.unref();
    stopping = (async () => {
      try {
        await pds.destroy();
      } catch (err) {
        log(`pds.destroy failed: ${err?.stack ?? err}`);
      }
      try {
        await plc.destroy();
      } catch (err) {
        log(`plc.destroy failed: ${err?.stack ?? err}`);
      }
      process.exit(0);
    })();
    return stopping;
  };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => shutdown(sig));
  watchStdin(() => shutdown('stdin closed'));

  emit({
    event: 'ready',
    pds: `http://localhost:${pdsPort}`,
    plc: plcUrl,
    pdsPort,
    plcPort,
    dataDir,
    adminPassword: secrets.adminPassword,
    replayedPlcOps: replayed,
    pid: process.pid,
  });
}

function bindLoopback(app) {
  const listen = app.listen;
  app.listen = function (port, ...rest) {
    if (typeof rest[0] === 'string') rest.shift();
    return listen.call(this, port, HOST, ...rest);
  };
}

// Only a pipe (a parent process) or a terminal counts: when stdin is
// /dev/null or a file, EOF says nothing about the parent.
function watchStdin(onClose) {
  let st;
  try {
    st = fs.fstatSync(0);
  } catch {
    return;
  }
  if (!(st.isFIFO() || st.isSocket() || process.stdin.isTTY)) return;
  process.stdin.on('data', () => {});
  process.stdin.on('end', onClose);
  process.stdin.on('close', onClose);
  process.stdin.on('error', onClose);
  process.stdin.resume();
}

main().catch((err) => {
  const message = err?.code === 'EADDRINUSE' ? `port in use: ${err.message}` : String(err?.message ?? err);
  log(err?.stack ?? String(err));
  emit({ event: 'error', message, code: err?.code ?? null });
  process.exit(1);
});
