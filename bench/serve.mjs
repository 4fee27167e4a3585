// Static HTTP server for the benchmark repos, on 127.0.0.1 only. Run as a child of run.mjs (IPC):
// it sends {port} once listening and answers {type: 'stats'} with its request and byte counts.
// Its own process, so that serving never competes with run.mjs's memory sampler for an event loop.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { resolve, sep } from 'node:path';

const root = resolve(process.argv[2] ?? '.');
// Milliseconds before each answer, as a real mirror's round trip (`--latency` of run.mjs).
const latencyMs = Number(process.argv[3] ?? 0);
let requests = 0;
let bytes = 0;
let notFound = 0;

const server = createServer(async (req, res) => {
  requests++;
  if (latencyMs > 0) await new Promise((done) => setTimeout(done, latencyMs));
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
  const file = resolve(root, '.' + path);
  const st = file.startsWith(root + sep) ? await stat(file).catch(() => undefined) : undefined;
  if (!st?.isFile() || (req.method !== 'GET' && req.method !== 'HEAD')) {
    notFound++;
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-length': st.size, 'content-type': 'application/octet-stream' });
  if (req.method === 'HEAD') return void res.end();
  bytes += st.size;
  createReadStream(file).pipe(res);
});

server.listen(0, '127.0.0.1', () => process.send?.({ port: server.address().port }));
process.on('message', (m) => {
  if (m?.type === 'stats') process.send?.({ type: 'stats', requests, bytes, notFound });
  if (m?.type === 'stop') server.close(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
