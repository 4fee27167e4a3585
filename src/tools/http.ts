// A small HTTP(S) client on node:http and node:https, for everything a run downloads: keep-alive
// connections shared by all downloads, redirects, an idle timeout, retries for whole-file
// downloads, file:// URLs. Not global fetch: undici adds a web-stream hop to every response. Not the
// @actions download helper: it drags @actions/core, http-client, undici and tunnel into the
// command line's bundle (~0.2 s of startup, ~25 MiB).
import { open, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import http, { STATUS_CODES, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { GENERATOR } from '../version.js';

/** Per host: enough for a few architectures downloading at once, without hammering a mirror. */
export const MAX_SOCKETS_PER_HOST = 16;
const AGENT_OPTIONS = { keepAlive: true, maxSockets: MAX_SOCKETS_PER_HOST, maxFreeSockets: MAX_SOCKETS_PER_HOST, scheduling: 'lifo' as const };
// Module-level, so every download of the process reuses the same connections. Idle pooled sockets
// are unref'd by node, so they never keep the process alive.
const agents = { 'http:': new http.Agent(AGENT_OPTIONS), 'https:': new https.Agent(AGENT_OPTIONS) };

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const DEFAULT_MAX_REDIRECTS = 5;
/** Node's codes for a connection that failed or broke: worth another attempt. */
const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND',
  'ENETUNREACH', 'ENETDOWN', 'EHOSTUNREACH', 'EHOSTDOWN', 'UND_ERR_SOCKET',
]);
/** Codes of this module's own limits. Never retried: a server that stalled for 30 s, trickles or sends too much is told at once. */
export const LIMIT_CODES = { stalled: 'ERR_STALLED', tooSlow: 'ERR_TOO_SLOW', deadline: 'ERR_DEADLINE', tooLarge: 'ERR_TOO_LARGE' } as const;

/**
 * Every read is bounded. A whole file (openUrl, download, downloadFile): at most 16 GiB, done
 * within 6 h. A small file in memory (fetchBuffer): 64 MiB, within 5 min. Both: no byte for 30 s
 * fails, and so does fewer than 1000 bytes/s over 30 s (dnf's `timeout` and `minrate`).
 */
export const LIMITS = {
  idleTimeoutMs: 30_000,
  minBytesPerSecond: 1000,
  file: { maxBytes: 16 * 2 ** 30, deadlineMs: 6 * 3600_000 },
  buffer: { maxBytes: 64 * 2 ** 20, deadlineMs: 300_000 },
} as const;

export interface RequestOptions {
  /**
   * A connection silent this long (connecting, awaiting headers, or mid-body) fails; also the
   * window of `minBytesPerSecond`, and the most the response headers may take.
   */
  idleTimeoutMs?: number;
  /** Fewer bytes a second than this over an `idleTimeoutMs` window fails (0: no minimum). */
  minBytesPerSecond?: number;
  /** The whole read (with download's retries, all attempts) must be done in this time. */
  deadlineMs?: number;
  /** A body larger than this fails (a larger Content-Length at once). */
  maxBytes?: number;
  maxRedirects?: number;
  headers?: Record<string, string>;
}

export interface RetryOptions {
  /** Attempts in all, the first included. */
  attempts?: number;
  /** Waits before the second, third… attempt (jittered ±25 %); the last one repeats. */
  delaysMs?: number[];
  onRetry?: (err: Error, attempt: number) => void;
}

export type DownloadOptions = RequestOptions & RetryOptions;

/** A non-2xx answer. `reason` is the message without the URL, for callers that already name it. */
export class HttpError extends Error {
  readonly reason: string;
  constructor(
    readonly url: string,
    readonly status: number,
    readonly statusText: string,
    /** From Retry-After, when the server sent one in seconds. */
    readonly retryAfterMs?: number,
    finalUrl?: string,
  ) {
    const reason = `HTTP ${status} ${statusText}`.trimEnd();
    super(`${url}: ${reason}${finalUrl && finalUrl !== url ? ` (redirected to ${finalUrl})` : ''}`);
    this.name = 'HttpError';
    this.reason = reason;
  }
}

/**
 * The connection failed, broke off mid-body, or went past one of the limits (code one of
 * LIMIT_CODES: stalled, too slow, too late, too large).
 */
export class NetworkError extends Error {
  readonly reason: string;
  readonly code: string | undefined;
  constructor(readonly url: string, cause: Error & { code?: string }) {
    // Node's own text for a connection closed mid-body is just "aborted".
    const reason = cause.message === 'aborted' ? 'the connection closed before the whole response arrived' : cause.message;
    super(`${url}: ${reason}`, { cause });
    this.name = 'NetworkError';
    this.reason = reason;
    this.code = cause.code;
  }
}

/** The message without the URL for this module's errors, the message otherwise. */
export const reasonOf = (err: unknown): string =>
  err instanceof HttpError || err instanceof NetworkError ? err.reason : String((err as Error | undefined)?.message ?? err);

// By code, not `instanceof Error`: node's internal errors may come from another realm (jest's vm).
const isNetworkLevel = (err: unknown): err is Error & { code?: string } =>
  typeof err === 'object' && err !== null && NETWORK_CODES.has(String((err as { code?: unknown }).code));

/** Worth another attempt: a network failure, a 5xx, 408 or 429; never 404, 403, a limit and the like. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof HttpError) return err.status >= 500 || err.status === 408 || err.status === 429;
  return isNetworkLevel(err); // a NetworkError carries its cause's code; a TLS or protocol error is not retried
}

function retryAfterMs(value: string | undefined): number | undefined {
  if (!value || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value) * 1000;
}

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(3))} s`;
const limitError = (url: string, code: string, message: string) => new NetworkError(url, Object.assign(new Error(message), { code }));
const tooLarge = (url: string, maxBytes: number) => limitError(url, LIMIT_CODES.tooLarge, `larger than the limit of ${maxBytes} bytes`);

interface Limits {
  idleMs: number;
  minRate: number;
  maxBytes: number;
  /** Date.now() by which the read must be done. */
  deadlineAt: number;
  deadlineMs: number;
}

function limitsOf(options: RequestOptions, defaults: { maxBytes: number; deadlineMs: number }): Limits {
  const deadlineMs = options.deadlineMs ?? defaults.deadlineMs;
  return {
    idleMs: options.idleTimeoutMs ?? LIMITS.idleTimeoutMs,
    minRate: options.minBytesPerSecond ?? LIMITS.minBytesPerSecond,
    maxBytes: options.maxBytes ?? defaults.maxBytes,
    deadlineAt: Date.now() + deadlineMs,
    deadlineMs,
  };
}

/**
 * Watches one read from the request to the body's end: the deadline, the minimum rate and the size
 * cap. Bytes are counted where the stream takes them in (its push), so no stream is added between
 * the socket and the consumer.
 */
class Watch {
  private target?: { destroy(err: Error): void };
  private readonly timers: NodeJS.Timeout[] = [];
  private done = false;

  private failed?: Error;

  constructor(private readonly url: string, private readonly limits: Limits) {
    const late = () => limitError(url, LIMIT_CODES.deadline, `not complete within ${seconds(limits.deadlineMs)} (the time limit)`);
    const left = limits.deadlineAt - Date.now();
    if (left <= 0) this.failed = late();
    else this.timers.push(setTimeout(() => this.fail(late()), Math.min(left, 2 ** 31 - 1)).unref());
  }

  /** Throws when the deadline passed before this attempt began. */
  check(): void {
    if (this.failed) throw this.failed;
  }

  /** What a limit destroys: the request until the response, then the body. */
  follow(target: { destroy(err: Error): void }): void {
    this.target = target;
    if (this.failed) target.destroy(this.failed);
  }

  fail(err: Error): void {
    if (this.done) return;
    this.failed = err;
    this.stop();
    this.target?.destroy(err);
  }

  stop(): void {
    this.done = true;
    for (const t of this.timers) clearTimeout(t);
  }

  /** Counts the body's bytes and enforces the cap and the minimum rate until the stream closes. */
  body(stream: Readable): Readable {
    this.follow(stream);
    const { maxBytes, minRate, idleMs } = this.limits;
    let size = 0;
    let windowStart = 0;
    let lastAt = Date.now();
    const push = stream.push;
    stream.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      if (chunk != null && !this.done) {
        size += (chunk as Buffer).length;
        lastAt = Date.now();
        if (size > maxBytes) {
          this.fail(tooLarge(this.url, maxBytes));
          return false;
        }
      }
      return push.call(stream, chunk, encoding);
    };
    if (minRate > 0) {
      const needed = Math.ceil((minRate * idleMs) / 1000);
      const rate = setInterval(() => {
        const got = size - windowStart;
        windowStart = size;
        // Data waiting unread: the consumer is behind, not the server. Silent for half the window:
        // the socket's idle timeout, due first, says "no data".
        if (stream.readableLength > 0 || Date.now() - lastAt > idleMs / 2) return;
        if (got < needed) {
          this.fail(limitError(this.url, LIMIT_CODES.tooSlow, `fewer than ${minRate} bytes/s over ${seconds(idleMs)} (${got} bytes; the minimum rate)`));
        }
      }, idleMs).unref();
      this.timers.push(rate);
    }
    stream.once('close', () => this.stop());
    return stream;
  }
}

/** One GET, settled at the response headers. */
function get(url: URL, options: RequestOptions, limits: Limits, watch: Watch): Promise<IncomingMessage> {
  const client = url.protocol === 'https:' ? https : http;
  const idle = limits.idleMs;
  return new Promise((resolve, reject) => {
    let response: IncomingMessage | undefined;
    const req = client.get(
      url,
      {
        agent: agents[url.protocol as 'http:' | 'https:'],
        // No accept-encoding: checksums are of the bytes as stored.
        headers: { 'user-agent': `${GENERATOR.name}/${GENERATOR.version}`, accept: '*/*', ...options.headers },
        timeout: idle,
      },
      (res) => {
        response = res;
        clearTimeout(headers);
        resolve(res);
      },
    );
    watch.follow(req);
    const stalled = () => limitError(url.href, LIMIT_CODES.stalled, `no data for ${seconds(idle)}`);
    // Headers trickled a byte at a time never make the socket idle: they get `idle` in all.
    let baseline: number | undefined;
    req.once('socket', (socket) => (baseline = socket.bytesRead));
    const headers = setTimeout(() => {
      const got = req.socket && baseline !== undefined ? req.socket.bytesRead - baseline : 0;
      req.destroy(got > 0 ? limitError(url.href, LIMIT_CODES.stalled, `no complete response headers within ${seconds(idle)}`) : stalled());
    }, idle);
    // The socket timeout covers every pause of the body (before the response, `headers` does).
    req.on('timeout', () => {
      if (!response) return;
      // Data waiting unread: the consumer is behind, not the server.
      if (response.readableLength > 0) return;
      response.destroy(stalled());
    });
    // Stays attached after the response: a late socket error must not go unhandled.
    req.on('error', (err) => {
      clearTimeout(headers);
      reject(err instanceof NetworkError ? err : new NetworkError(url.href, err));
    });
  });
}

/** Lets go of a response not read: a short body is drained so its socket is reused, any other closed. */
function discard(res: IncomingMessage): void {
  const length = Number(res.headers['content-length']);
  if (length >= 0 && length <= 65536) res.resume();
  else res.destroy();
}

/**
 * The body of `url` as a stream: http(s) (following up to 5 redirects) or file://. A non-2xx answer
 * is an HttpError; a failed connection or a limit passed (see LIMITS) a NetworkError. No retries:
 * a stream cannot be restarted.
 */
export async function openUrl(url: string | URL, options: RequestOptions = {}): Promise<Readable> {
  return openWatched(url, limitsOf(options, LIMITS.file), options);
}

async function openWatched(url: string | URL, limits: Limits, options: RequestOptions): Promise<Readable> {
  const asked = String(url);
  const start = new URL(url);
  let current = start;
  const watch = new Watch(asked, limits);
  try {
    watch.check();
    if (current.protocol === 'file:') {
      const handle = await open(fileURLToPath(current)); // fails here, not later, when absent
      if ((await handle.stat()).size > limits.maxBytes) {
        await handle.close();
        throw tooLarge(asked, limits.maxBytes);
      }
      return watch.body(handle.createReadStream());
    }
    const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
    for (let redirects = 0; ; redirects++) {
      if (current.protocol !== 'http:' && current.protocol !== 'https:') {
        throw new Error(`${asked}: ${redirects > 0 ? `redirected to ${current.href}, ` : ''}not an http(s) or file URL`);
      }
      const res = await get(current, options, limits, watch);
      const status = res.statusCode ?? 0;
      if (REDIRECTS.has(status) && res.headers.location) {
        discard(res);
        if (redirects >= maxRedirects) throw new Error(`${asked}: more than ${maxRedirects} redirects`);
        current = new URL(res.headers.location, current);
        continue;
      }
      if (status < 200 || status >= 300) {
        discard(res);
        throw new HttpError(asked, status, res.statusMessage || STATUS_CODES[status] || '', retryAfterMs(res.headers['retry-after']), current === start ? undefined : current.href);
      }
      if (Number(res.headers['content-length']) > limits.maxBytes) {
        res.destroy();
        throw tooLarge(asked, limits.maxBytes);
      }
      return watch.body(res);
    }
  } catch (err) {
    watch.stop();
    throw err;
  }
}

/** Runs `work` until it succeeds, up to `attempts` times, waiting a little between retryable failures. */
export async function retrying<T>(work: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 3);
  const delays = options.delaysMs?.length ? options.delaysMs : [250, 1000];
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (err) {
      if (attempt >= attempts || !isRetryable(err)) throw err;
      options.onRetry?.(err as Error, attempt);
      const base = (err instanceof HttpError && err.retryAfterMs !== undefined ? Math.min(err.retryAfterMs, 10_000) : undefined) ??
        delays[Math.min(attempt - 1, delays.length - 1)]!;
      // Jitter, so many downloads failing together do not come back together.
      await sleep(base * (0.75 + Math.random() / 2));
    }
  }
}

/**
 * Opens `url` and hands the body to `consume`, which must read all of it; the whole thing is
 * retried on network failures, 5xx, 408 and 429, with a fresh body each attempt, all of them
 * within one deadline. A network error `consume` meets mid-body comes out as a NetworkError naming
 * the URL.
 */
export async function download<T>(url: string, consume: (body: Readable) => Promise<T>, options: DownloadOptions = {}): Promise<T> {
  return downloadWithin(url, consume, options, LIMITS.file);
}

async function downloadWithin<T>(
  url: string,
  consume: (body: Readable) => Promise<T>,
  options: DownloadOptions,
  defaults: { maxBytes: number; deadlineMs: number },
): Promise<T> {
  const limits = limitsOf(options, defaults);
  return retrying(async () => {
    const body = await openWatched(url, limits, options);
    try {
      return await consume(body);
    } catch (err) {
      // The reason the body was destroyed (a limit) is what the consumer's pipeline may have lost.
      const cause = (body as { errored?: unknown }).errored ?? err;
      body.destroy();
      if (cause instanceof NetworkError) throw cause;
      if (!isNetworkLevel(cause)) throw err;
      throw new NetworkError(url, cause);
    }
  }, options);
}

/**
 * Downloads `url` into `dest` (created or truncated on each attempt); resolves to the size. On
 * failure `dest` is removed.
 */
export async function downloadFile(url: string, dest: string, options: DownloadOptions = {}): Promise<number> {
  try {
    return await download(
      url,
      async (body) => {
        const out = createWriteStream(dest);
        await pipeline(body, out);
        return out.bytesWritten;
      },
      options,
    );
  } catch (err) {
    await rm(dest, { force: true });
    throw err;
  }
}

/** A small file (repomd.xml, a gpg key) in memory, with retries; by default at most 64 MiB within 5 min. */
export async function fetchBuffer(url: string, options: DownloadOptions = {}): Promise<Buffer> {
  return downloadWithin(
    url,
    async (body) => {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        size += chunk.length;
        chunks.push(chunk);
      }
      return Buffer.concat(chunks, size);
    },
    options,
    LIMITS.buffer,
  );
}
