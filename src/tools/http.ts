// A small HTTP(S) client on node:http and node:https, for everything a run downloads: keep-alive
// connections shared by all downloads, redirects, an idle timeout, retries for whole-file
// downloads, file:// URLs. Not global fetch: undici adds a web-stream hop to every response. Not the
// @actions download helper: it drags @actions/core, http-client, undici and tunnel into the
// command line's bundle (~0.2 s of startup, ~25 MiB).
import { open } from 'node:fs/promises';
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
const DEFAULT_IDLE_TIMEOUT_MS = 30_000; // as dnf's `timeout`
const DEFAULT_MAX_REDIRECTS = 5;
const DEFAULT_MAX_BYTES = 64 << 20;
/** Node's codes for a connection that failed, broke or stalled: worth another attempt. */
const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND',
  'ENETUNREACH', 'ENETDOWN', 'EHOSTUNREACH', 'EHOSTDOWN', 'UND_ERR_SOCKET',
]);

export interface RequestOptions {
  /** A connection silent this long (connecting, awaiting headers, or mid-body) fails. */
  idleTimeoutMs?: number;
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

/** The connection failed, broke off mid-body, or stayed silent too long (code ETIMEDOUT). */
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

/** Worth another attempt: a network failure, a 5xx, 408 or 429; never 404, 403 and the like. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof HttpError) return err.status >= 500 || err.status === 408 || err.status === 429;
  return isNetworkLevel(err); // a NetworkError carries its cause's code; a TLS or protocol error is not retried
}

function retryAfterMs(value: string | undefined): number | undefined {
  if (!value || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value) * 1000;
}

/** One GET, settled at the response headers. */
function get(url: URL, options: RequestOptions): Promise<IncomingMessage> {
  const client = url.protocol === 'https:' ? https : http;
  const idle = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
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
        resolve(res);
      },
    );
    // The socket timeout covers connecting, waiting and every pause of the body alike.
    req.on('timeout', () => {
      const err = new NetworkError(url.href, Object.assign(new Error(`no data for ${idle / 1000} s`), { code: 'ETIMEDOUT' }));
      // Once the body flows, failing the response is what its reader sees.
      if (response) response.destroy(err);
      else req.destroy(err);
    });
    // Stays attached after the response: a late socket error must not go unhandled.
    req.on('error', (err) => reject(err instanceof NetworkError ? err : new NetworkError(url.href, err)));
  });
}

/**
 * The body of `url` as a stream: http(s) (following up to 5 redirects) or file://. A non-2xx answer
 * is an HttpError; a failed connection a NetworkError. No retries: a stream cannot be restarted.
 */
export async function openUrl(url: string | URL, options: RequestOptions = {}): Promise<Readable> {
  const asked = String(url);
  const start = new URL(url);
  let current = start;
  if (current.protocol === 'file:') {
    const handle = await open(fileURLToPath(current)); // fails here, not later, when absent
    return handle.createReadStream();
  }
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  for (let redirects = 0; ; redirects++) {
    if (current.protocol !== 'http:' && current.protocol !== 'https:') {
      throw new Error(`${asked}: ${redirects > 0 ? `redirected to ${current.href}, ` : ''}not an http(s) or file URL`);
    }
    const res = await get(current, options);
    const status = res.statusCode ?? 0;
    if (REDIRECTS.has(status) && res.headers.location) {
      res.resume(); // drained, so the socket goes back to the pool
      if (redirects >= maxRedirects) throw new Error(`${asked}: more than ${maxRedirects} redirects`);
      current = new URL(res.headers.location, current);
      continue;
    }
    if (status < 200 || status >= 300) {
      res.resume();
      throw new HttpError(asked, status, res.statusMessage || STATUS_CODES[status] || '', retryAfterMs(res.headers['retry-after']), current === start ? undefined : current.href);
    }
    return res;
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
 * retried on network failures, 5xx, 408 and 429, with a fresh body each attempt. A network error
 * `consume` meets mid-body comes out as a NetworkError naming the URL.
 */
export async function download<T>(url: string, consume: (body: Readable) => Promise<T>, options: DownloadOptions = {}): Promise<T> {
  return retrying(async () => {
    const body = await openUrl(url, options);
    try {
      return await consume(body);
    } catch (err) {
      body.destroy();
      if (err instanceof NetworkError || !isNetworkLevel(err)) throw err;
      throw new NetworkError(url, err);
    }
  }, options);
}

/** Downloads `url` into `dest` (created or truncated on each attempt); resolves to the size. */
export async function downloadFile(url: string, dest: string, options: DownloadOptions = {}): Promise<number> {
  return download(
    url,
    async (body) => {
      const out = createWriteStream(dest);
      await pipeline(body, out);
      return out.bytesWritten;
    },
    options,
  );
}

/** A small file (repomd.xml, a gpg key) in memory, with retries; more than `maxBytes` (64 MiB) fails. */
export async function fetchBuffer(url: string, options: DownloadOptions & { maxBytes?: number } = {}): Promise<Buffer> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  return download(
    url,
    async (body) => {
      const tooLarge = () => new Error(`${url}: larger than the limit of ${maxBytes} bytes`);
      const declared = Number((body as Partial<IncomingMessage>).headers?.['content-length']);
      if (declared > maxBytes) throw tooLarge();
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxBytes) throw tooLarge();
        chunks.push(chunk);
      }
      return Buffer.concat(chunks, size);
    },
    options,
  );
}
