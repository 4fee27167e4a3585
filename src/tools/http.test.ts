import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { download, downloadFile, fetchBuffer, HttpError, isRetryable, LIMIT_CODES, MAX_SOCKETS_PER_HOST, NetworkError, openUrl, retrying } from './http.js';
import { writeForever } from '../../test/fixtures/http.js';

interface TestServer {
  url: string;
  /** Requests per path. */
  hits: Map<string, number>;
  connections: () => number;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, hit: number) => void;

async function serve(routes: Record<string, Handler>): Promise<TestServer> {
  const hits = new Map<string, number>();
  let connections = 0;
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const hit = (hits.get(path) ?? 0) + 1;
    hits.set(path, hit);
    const route = Object.entries(routes).find(([prefix]) => path === prefix || (prefix.endsWith('/') && path.startsWith(prefix)));
    if (route) route[1](req, res, hit);
    else res.writeHead(404).end('not here');
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    connections: () => connections,
    close: () => {
      server.closeAllConnections(); // stalled responses too
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const big = Buffer.alloc(1 << 20, 'b');
const fast = { delaysMs: [5] };
let dir: string;
let server: TestServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ce-http-test-'));
  server = await serve({
    '/hello': (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello'),
    '/big': (_req, res) => res.writeHead(200, { 'content-length': big.length }).end(big),
    // No content-length: the size is known only by reading.
    '/big-chunked': (_req, res) => {
      res.writeHead(200);
      for (let i = 0; i < 16; i++) res.write(big.subarray(i << 16, (i + 1) << 16));
      res.end();
    },
    // /hop/3 → /hop/2 → … → /hello, by relative Locations.
    '/hop/': (req, res) => {
      const left = Number(req.url!.split('/').pop());
      res.writeHead(302, { location: left > 1 ? `${left - 1}` : '../hello' }).end();
    },
    '/absolute': (_req, res) => res.writeHead(301, { location: `${server.url}/hello` }).end(),
    '/to-file': (_req, res) => res.writeHead(302, { location: 'file:///etc/passwd' }).end(),
    '/gone-after-redirect': (_req, res) => res.writeHead(307, { location: '/nothing' }).end(),
    '/forbidden': (_req, res) => res.writeHead(403).end(),
    '/flaky-twice/': (_req, res, hit) => (hit <= 2 ? res.writeHead(503).end() : res.writeHead(200).end('finally')),
    '/always-503': (_req, res) => res.writeHead(503).end(),
    '/throttled': (_req, res, hit) => (hit === 1 ? res.writeHead(429, { 'retry-after': '0' }).end() : res.writeHead(200).end('ok')),
    '/timeout-once': (_req, res, hit) => (hit === 1 ? res.writeHead(408).end() : res.writeHead(200).end('ok')),
    // The first response breaks off mid-body.
    '/cut-once': (_req, res, hit) => {
      res.writeHead(200, { 'content-length': big.length });
      if (hit > 1) res.end(big);
      else res.write(big.subarray(0, 1000), () => res.socket?.destroy());
    },
    '/stall-headers': () => undefined,
    '/stall-body': (_req, res) => {
      res.writeHead(200, { 'content-length': 100 });
      res.write('a few bytes');
    },
    '/slow': (_req, res) => setTimeout(() => res.writeHead(200).end('slow'), 50),
  });
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const at = (path: string) => `${server.url}${path}`;
const text = async (url: string, options = {}) => (await fetchBuffer(url, { ...fast, ...options })).toString();
async function failure(promise: Promise<unknown>): Promise<Error> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  // Node's own errors (fs, sockets) come from another realm than jest's Error.
  expect(typeof (err as Error | undefined)?.message).toBe('string');
  return err as Error;
}

describe('openUrl and fetchBuffer over http', () => {
  test('a body, as a stream and as a buffer', async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of await openUrl(at('/hello'))) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hello');
    expect((await fetchBuffer(at('/big'))).equals(big)).toBe(true); // toEqual on 1 MiB takes seconds
  });

  test('redirects: relative and absolute Locations, up to 5', async () => {
    expect(await text(at('/hop/5'))).toBe('hello');
    expect(await text(at('/absolute'))).toBe('hello');
    expect((await failure(text(at('/hop/6')))).message).toBe(`${at('/hop/6')}: more than 5 redirects`);
    expect((await failure(text(at('/to-file')))).message).toBe(`${at('/to-file')}: redirected to file:///etc/passwd, not an http(s) or file URL`);
    expect((await failure(text(at('/gone-after-redirect')))).message).toBe(
      `${at('/gone-after-redirect')}: HTTP 404 Not Found (redirected to ${at('/nothing')})`,
    );
  });

  test('a 404 names the URL and the status, and is not retried; nor is a 403', async () => {
    const err = await failure(text(at('/missing')));
    expect(err).toBeInstanceOf(HttpError);
    expect(err.message).toBe(`${at('/missing')}: HTTP 404 Not Found`);
    expect(err).toMatchObject({ status: 404, statusText: 'Not Found', reason: 'HTTP 404 Not Found' });
    expect(server.hits.get('/missing')).toBe(1);
    expect((await failure(text(at('/forbidden')))).message).toBe(`${at('/forbidden')}: HTTP 403 Forbidden`);
    expect(server.hits.get('/forbidden')).toBe(1);
  });

  test('503 twice, then success: three attempts; always 503: fails after three', async () => {
    const retries: number[] = [];
    expect(await text(at('/flaky-twice/a'), { onRetry: (_e: Error, attempt: number) => retries.push(attempt) })).toBe('finally');
    expect(server.hits.get('/flaky-twice/a')).toBe(3);
    expect(retries).toEqual([1, 2]);
    expect((await failure(text(at('/always-503'))) as HttpError).reason).toBe('HTTP 503 Service Unavailable');
    expect(server.hits.get('/always-503')).toBe(3);
    // Only two attempts allowed: the third, successful one never happens.
    expect((await failure(text(at('/flaky-twice/b'), { attempts: 2 }))).message).toMatch(/HTTP 503/);
    expect(server.hits.get('/flaky-twice/b')).toBe(2);
  });

  test('429 (with Retry-After) and 408 are retried', async () => {
    expect(await text(at('/throttled'))).toBe('ok');
    expect(server.hits.get('/throttled')).toBe(2);
    expect(await text(at('/timeout-once'))).toBe('ok');
    expect(server.hits.get('/timeout-once')).toBe(2);
  });

  test('a body cut off midway is downloaded again whole', async () => {
    const file = join(dir, 'cut');
    expect(await downloadFile(at('/cut-once'), file, fast)).toBe(big.length);
    expect((await readFile(file)).equals(big)).toBe(true);
    expect(server.hits.get('/cut-once')).toBe(2);
  });

  test('a connection that cannot be made is a NetworkError naming the URL, retried', async () => {
    const closed = await serve({});
    const url = `${closed.url}/x`;
    await closed.close();
    let attempts = 0;
    const err = await failure(retrying(() => (attempts++, openUrl(url)), fast));
    expect(err).toBeInstanceOf(NetworkError);
    expect(err.message).toMatch(new RegExp(`^${url}: connect ECONNREFUSED`));
    expect(attempts).toBe(3);
  });

  test('a silent server fails after the idle timeout, waiting for headers or mid-body', async () => {
    for (const path of ['/stall-headers', '/stall-body']) {
      const started = Date.now();
      const err = await failure(fetchBuffer(at(path), { idleTimeoutMs: 200, attempts: 1 }));
      expect(err).toBeInstanceOf(NetworkError);
      expect(err.message).toBe(`${at(path)}: no data for 0.2 s`);
      expect(err).toMatchObject({ code: LIMIT_CODES.stalled });
      expect(isRetryable(err)).toBe(false); // reported after one idle timeout, not after three
      expect(Date.now() - started).toBeLessThan(5000);
    }
  });

  test('maxBytes is enforced, with a content-length or without', async () => {
    for (const path of ['/big', '/big-chunked']) {
      const before = server.hits.get(path) ?? 0;
      expect((await failure(fetchBuffer(at(path), { maxBytes: 1000 }))).message).toBe(`${at(path)}: larger than the limit of 1000 bytes`);
      expect(server.hits.get(path)).toBe(before + 1); // not retried
      expect(await fetchBuffer(at(path), { maxBytes: big.length })).toHaveLength(big.length);
    }
  });

  test('a consumer error that is not the network is passed on, not retried', async () => {
    let calls = 0;
    const err = await failure(download(at('/hello'), async () => {
      calls++;
      throw new Error('disk full');
    }, fast));
    expect(err.message).toBe('disk full');
    expect(calls).toBe(1);
  });
});

describe('keep-alive', () => {
  test('sequential requests reuse one connection', async () => {
    const own = await serve({ '/a': (_req, res) => res.writeHead(200).end('a') });
    try {
      for (let i = 0; i < 10; i++) expect((await fetchBuffer(`${own.url}/a`)).toString()).toBe('a');
      expect(own.hits.get('/a')).toBe(10);
      expect(own.connections()).toBe(1);
    } finally {
      await own.close();
    }
  });

  test(`concurrent requests open at most ${MAX_SOCKETS_PER_HOST} connections to a host`, async () => {
    const own = await serve({ '/slow': (_req, res) => setTimeout(() => res.writeHead(200).end('slow'), 30) });
    try {
      const bodies = await Promise.all(Array.from({ length: 40 }, () => fetchBuffer(`${own.url}/slow`)));
      expect(bodies.map(String)).toEqual(bodies.map(() => 'slow'));
      expect(own.connections()).toBeLessThanOrEqual(MAX_SOCKETS_PER_HOST);
      expect(own.connections()).toBeGreaterThan(1);
    } finally {
      await own.close();
    }
  });
});

describe('file:// URLs', () => {
  test('read as files; an absent file fails at once and is not retried', async () => {
    const file = join(dir, 'local file.txt');
    await writeFile(file, 'local');
    const url = pathToFileURL(file).href;
    expect((await fetchBuffer(url)).toString()).toBe('local');
    const chunks: Buffer[] = [];
    for await (const chunk of await openUrl(url)) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('local');
    expect((await failure(fetchBuffer(url, { maxBytes: 2 }))).message).toBe(`${url}: larger than the limit of 2 bytes`);

    let attempts = 0;
    const err = await failure(retrying(() => (attempts++, openUrl(pathToFileURL(join(dir, 'absent')))), fast));
    expect(err.message).toMatch(/ENOENT/);
    expect(attempts).toBe(1);
  });
});

describe('hostile servers: every read is bounded', () => {
  let hostile: TestServer;
  const timers = new Set<NodeJS.Timeout>();
  const every = (ms: number, fn: () => void) => {
    const t = setInterval(fn, ms);
    timers.add(t);
    return t;
  };
  beforeAll(async () => {
    hostile = await serve({
      // An endless body, as fast as the socket takes it.
      '/endless': (_req, res) => {
        res.writeHead(200);
        writeForever(res, Buffer.alloc(64 << 10, 'x'));
      },
      // One byte every 50 ms: never silent, far below the minimum rate.
      '/trickle': (_req, res) => {
        res.writeHead(200);
        const t = every(50, () => (res.destroyed ? clearInterval(t) : res.write('x')));
      },
      '/stall-headers': () => undefined,
      '/declared-large': (_req, res) => {
        res.writeHead(200, { 'content-length': 10_000_000 });
        res.write('a');
      },
    });
  });
  afterAll(async () => {
    for (const t of timers) clearInterval(t);
    await hostile?.close();
  });
  const url = (path: string) => `${hostile.url}${path}`;
  const limits = { idleTimeoutMs: 300, minBytesPerSecond: 1000, attempts: 3, delaysMs: [5] };

  async function timed(promise: Promise<unknown>): Promise<{ err: Error; ms: number }> {
    const started = Date.now();
    const err = await failure(promise);
    return { err, ms: Date.now() - started };
  }

  test('an endless body stops at the size cap: in memory, as a file (removed), as a stream', async () => {
    const before = hostile.hits.get('/endless') ?? 0;
    let r = await timed(fetchBuffer(url('/endless'), { ...limits, maxBytes: 5 << 20 }));
    expect(r.err.message).toBe(`${url('/endless')}: larger than the limit of ${5 << 20} bytes`);
    expect(r.err).toMatchObject({ code: LIMIT_CODES.tooLarge, reason: `larger than the limit of ${5 << 20} bytes` });
    expect(r.ms).toBeLessThan(5000);
    const file = join(dir, 'endless');
    r = await timed(downloadFile(url('/endless'), file, { ...limits, maxBytes: 5 << 20 }));
    expect(r.err.message).toBe(`${url('/endless')}: larger than the limit of ${5 << 20} bytes`);
    await expect(access(file)).rejects.toThrow(/ENOENT/); // the partial file is gone
    expect(hostile.hits.get('/endless')).toBe(before + 2); // not retried
    const body = await openUrl(url('/endless'), { maxBytes: 1 << 20 });
    r = await timed((async () => { for await (const _ of body) { /* read */ } })());
    expect(r.err.message).toBe(`${url('/endless')}: larger than the limit of ${1 << 20} bytes`);
  });

  test('an endless body within the size cap meets the deadline', async () => {
    const r = await timed(download(url('/endless'), async (body) => { for await (const _ of body) { /* read */ } }, { ...limits, deadlineMs: 400 }));
    expect(r.err.message).toBe(`${url('/endless')}: not complete within 0.4 s (the time limit)`);
    expect(r.err).toMatchObject({ code: LIMIT_CODES.deadline });
    expect(r.ms).toBeLessThan(2000);
  });

  test('a byte every 50 ms fails the minimum rate after one window, without retries', async () => {
    const before = hostile.hits.get('/trickle') ?? 0;
    const r = await timed(fetchBuffer(url('/trickle'), limits));
    expect(r.err.message).toMatch(new RegExp(`^${url('/trickle')}: fewer than 1000 bytes/s over 0.3 s \\(\\d bytes; the minimum rate\\)$`));
    expect(r.err).toMatchObject({ code: LIMIT_CODES.tooSlow });
    expect(r.ms).toBeGreaterThanOrEqual(290);
    expect(r.ms).toBeLessThan(1500);
    expect(hostile.hits.get('/trickle')).toBe(before + 1);
  });

  test('a server that never answers: "no data", after one idle timeout', async () => {
    const r = await timed(fetchBuffer(url('/stall-headers'), limits));
    expect(r.err.message).toBe(`${url('/stall-headers')}: no data for 0.3 s`);
    expect(r.ms).toBeLessThan(1500);
  });

  test('headers sent a byte at a time get one idle timeout in all', async () => {
    const sockets = new Set<Socket>();
    const raw = createTcpServer((socket) => {
      sockets.add(socket);
      const head = 'HTTP/1.1 200 OK\r\nX-Padding: ' + 'y'.repeat(1000);
      let i = 0;
      const t = every(20, () => (socket.destroyed ? clearInterval(t) : socket.write(head[i++ % head.length]!)));
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const rawUrl = `http://127.0.0.1:${(raw.address() as AddressInfo).port}/slow-headers`;
    try {
      const r = await timed(fetchBuffer(rawUrl, limits));
      expect(r.err.message).toBe(`${rawUrl}: no complete response headers within 0.3 s`);
      expect(r.ms).toBeLessThan(1500);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => raw.close(resolve));
    }
  });

  test('a declared size over the cap fails at the headers', async () => {
    // An idle timeout long enough that failing at the headers and failing at it cannot be confused on a busy machine.
    const r = await timed(fetchBuffer(url('/declared-large'), { ...limits, idleTimeoutMs: 5000, maxBytes: 1000 }));
    expect(r.err.message).toBe(`${url('/declared-large')}: larger than the limit of 1000 bytes`);
    expect(r.ms).toBeLessThan(2500); // not after the idle timeout
  });

  test('a slow consumer is not blamed for the rate', async () => {
    // 1 MiB read with a pause longer than the window: the data waits unread, the server is not slow.
    const got = await download(at('/big-chunked'), async (body) => {
      let size = 0;
      for await (const chunk of body) {
        if (size === 0) await new Promise((resolve) => setTimeout(resolve, 700));
        size += (chunk as Buffer).length;
      }
      return size;
    }, limits);
    expect(got).toBe(big.length);
  });
});
