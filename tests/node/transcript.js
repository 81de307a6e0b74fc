// Runs statements with node-postgres and prints what the client saw, one JSON object
// per statement: rows, command tag, error (SQLSTATE, severity, message) and notices.
// Connection settings come from the PG* environment variables.
//
//   node transcript.js statements.json      run each statement, print a transcript
//   node transcript.js pid                  print the backend pid the client was given,
//                                           the pid of a NOTIFY it sent itself, and
//                                           pg_backend_pid()
//   node transcript.js wait-terminate       print the pid, then wait until the server
//                                           ends the session and print how it ended
'use strict';
const { Client } = require('pg');
const fs = require('fs');

async function transcript(file) {
  const statements = JSON.parse(fs.readFileSync(file, 'utf8'));
  const client = new Client();
  let notices = [];
  client.on('notice', (n) => notices.push({ code: n.code, severity: n.severity, message: n.message }));
  await client.connect();
  const out = [];
  for (const s of statements) {
    notices = [];
    const entry = { sql: s };
    try {
      const res = await client.query({ text: s, rowMode: 'array' });
      const results = Array.isArray(res) ? res : [res];
      entry.results = results.map((r) => ({
        command: r.command,
        rowCount: r.rowCount,
        fields: (r.fields || []).map((f) => f.name),
        rows: (r.rows || []).map((row) => row.map((v) => (v === null ? null : String(v)))),
      }));
    } catch (e) {
      entry.error = { code: e.code, severity: e.severity, message: e.message };
    }
    entry.notices = notices;
    out.push(entry);
  }
  await client.end();
  process.stdout.write(JSON.stringify(out) + '\n');
}

async function pid() {
  const client = new Client();
  await client.connect();
  const got = new Promise((resolve) => client.on('notification', (n) => resolve(n.processId)));
  await client.query('LISTEN tapline_pid');
  await client.query("NOTIFY tapline_pid, 'me'");
  const notifyPid = await got;
  const backend = (await client.query('SELECT pg_backend_pid() AS p')).rows[0].p;
  process.stdout.write(JSON.stringify({ given: client.processID, notify: notifyPid, backend }) + '\n');
  await client.end();
}

async function waitTerminate() {
  const client = new Client();
  await client.connect();
  process.stdout.write(JSON.stringify({ given: client.processID }) + '\n');
  const ended = new Promise((resolve) => {
    client.on('error', (e) => resolve({ code: e.code || null, message: e.message }));
    client.on('end', () => resolve({ code: null, message: 'ended' }));
  });
  // Keep a query running so the termination is seen as a server error.
  client.query('SELECT pg_sleep(30)').catch((e) => {
    process.stdout.write(JSON.stringify({ query_error: { code: e.code || null, message: e.message } }) + '\n');
  });
  const how = await ended;
  process.stdout.write(JSON.stringify({ ended: how }) + '\n');
}

const mode = process.argv[2];
const run = mode === 'pid' ? pid() : mode === 'wait-terminate' ? waitTerminate() : transcript(mode);
run.catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
