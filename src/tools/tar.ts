// A streaming tar reader (ustar, pax and GNU long names) for image layers and rootfs tarballs:
// every entry is seen once, and only the contents asked for are written anywhere. Compression is
// recognised from the magic bytes, not from a media type that may be wrong.
import { createReadStream, constants } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { run } from './exec.js';

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';

export interface TarEntry {
  /** Position among the archive's entries (0, 1, …), the same on every read of the archive. */
  index: number;
  /** As stored in the archive (may start with `./` or `/`, may end with `/`). */
  path: string;
  type: TarEntryType;
  /** Symlink target or hardlink source, verbatim. */
  linkname: string;
  size: number;
  mode: number;
}

export type Compression = 'gzip' | 'zstd' | 'none';

/** gzip and zstd by their magic numbers; anything else is read as a plain tar. */
export async function detectCompression(file: string): Promise<Compression> {
  const fh = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(4), 0, 4, 0);
    if (bytesRead >= 2 && buffer[0] === 0x1f && buffer[1] === 0x8b) return 'gzip';
    if (bytesRead === 4 && buffer.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return 'none';
  } finally {
    await fh.close();
  }
}

/** A compressed file (assumed to hold a tar), or a plain tar by its ustar magic. */
export async function looksLikeTarball(file: string): Promise<boolean> {
  if ((await detectCompression(file)) !== 'none') return true;
  const fh = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(5), 0, 5, 257);
    return bytesRead === 5 && buffer.toString('latin1') === 'ustar';
  } finally {
    await fh.close();
  }
}

/**
 * A zstd archive decompressed to `scratch` with the zstd tool (Node 20's zlib has no zstd); other
 * archives are returned as they are. The caller removes `scratch`.
 */
export async function plainOrGzip(file: string, scratch: string): Promise<{ file: string; gzip: boolean }> {
  const compression = await detectCompression(file);
  if (compression !== 'zstd') return { file, gzip: compression === 'gzip' };
  await run('zstd', ['-d', '-q', '-f', '-o', scratch, '--', file]);
  return { file: scratch, gzip: false };
}

/**
 * Reads the entries of a tar archive in order: all of them, or the first `limit`. `onEntry`
 * returns a path to write a regular file's contents to (created mode 0644, never through a
 * symlink), or undefined to skip them.
 */
export async function readTar(
  file: string,
  onEntry: (entry: TarEntry) => Promise<string | undefined> | string | undefined,
  options: { scratch: string; limit?: number },
): Promise<void> {
  const plain = await plainOrGzip(file, options.scratch);
  const raw = createReadStream(plain.file, { highWaterMark: 1 << 20 });
  const stream = plain.gzip ? raw.pipe(createGunzip()) : raw;
  if (plain.gzip) raw.on('error', (err) => stream.destroy(err));
  try {
    await parse(new ByteReader(stream[Symbol.asyncIterator]()), onEntry, options.limit ?? Infinity).catch((err: unknown) => {
      throw err instanceof TruncatedError ? new Error(`${file}: truncated tar archive`) : err;
    });
  } finally {
    // Stopping early leaves the rest unread: close the file now rather than at garbage collection.
    stream.destroy();
    raw.destroy();
    if (plain.file !== file) await rm(plain.file, { force: true });
  }
}

class TruncatedError extends Error {}

class ByteReader {
  private chunks: Buffer[] = [];
  private have = 0;
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.have < n) {
      const next = await this.source.next();
      if (next.done) return false;
      this.chunks.push(next.value);
      this.have += next.value.length;
    }
    return true;
  }

  /** Exactly n bytes; undefined when the stream ends before any of them, an error when it ends within. */
  async take(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) {
      if (this.have === 0) return undefined;
      throw new TruncatedError();
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      this.consume(k);
    }
    return out;
  }

  /** Passes the next n bytes to `sink` (or drops them), chunk by chunk; false if the stream ends first. */
  async pass(n: number, sink?: (chunk: Buffer) => Promise<unknown>): Promise<boolean> {
    while (n > 0) {
      if (this.have === 0 && !(await this.fill(1))) return false;
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n);
      if (sink) await sink(c.subarray(0, k));
      this.consume(k);
      n -= k;
    }
    return true;
  }

  private consume(k: number): void {
    const c = this.chunks[0]!;
    if (k === c.length) this.chunks.shift();
    else this.chunks[0] = c.subarray(k);
    this.have -= k;
  }
}

const BLOCK = 512;
const TYPES: Record<string, TarEntryType> = { '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '5': 'dir' };

function cString(b: Buffer, start: number, length: number): string {
  const field = b.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? length : end).toString('utf8');
}

/** Octal, or GNU base-256 when the high bit of the first byte is set. */
function number(b: Buffer, start: number, length: number): number {
  if (b[start]! & 0x80) {
    let n = b[start]! & 0x7f;
    for (let i = 1; i < length; i++) n = n * 256 + b[start + i]!;
    return n;
  }
  const s = cString(b, start, length).trim();
  return s ? parseInt(s, 8) : 0;
}

/** `<length> <key>=<value>\n` records (values may contain newlines: the length counts). */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < data.length) {
    const space = data.indexOf(0x20, off);
    if (space < 0) break;
    const len = parseInt(data.subarray(off, space).toString('ascii'), 10);
    if (!(len > 0)) break;
    const record = data.subarray(space + 1, off + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    off += len;
  }
  return out;
}

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

async function parse(
  reader: ByteReader,
  onEntry: (entry: TarEntry) => Promise<string | undefined> | string | undefined,
  limit: number,
): Promise<void> {
  const truncated = () => new TruncatedError();
  let globalPax: Record<string, string> = {};
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  for (let index = 0; index < limit; ) {
    const header = await reader.take(BLOCK);
    // The end-of-archive zero block, or the end of a stream that omits it at a block boundary.
    if (!header || header.every((b) => b === 0)) return;
    const typeflag = String.fromCharCode(header[156]!);
    const size = number(header, 124, 12);
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      const data = await reader.take(size);
      if (!data || !(await reader.pass(padding(size)))) throw truncated();
      if (typeflag === 'x') pax = parsePax(data);
      else if (typeflag === 'g') globalPax = { ...globalPax, ...parsePax(data) };
      else if (typeflag === 'L') longName = cString(data, 0, data.length);
      else longLink = cString(data, 0, data.length);
      continue;
    }
    const attrs = { ...globalPax, ...pax };
    const ustarPrefix = header.subarray(257, 263).toString('latin1') === 'ustar\0' ? cString(header, 345, 155) : '';
    const path = attrs['path'] ?? longName ?? (ustarPrefix ? `${ustarPrefix}/` : '') + cString(header, 0, 100);
    const linkname = attrs['linkpath'] ?? longLink ?? cString(header, 157, 100);
    const entrySize = attrs['size'] !== undefined ? Number(attrs['size']) : size;
    pax = {};
    longName = longLink = undefined;
    const type = TYPES[typeflag] ?? 'other';
    // Only regular files carry data we read; everything else with a size is skipped (GNU sparse included).
    const dataSize = type === 'file' ? entrySize : type === 'other' ? size : 0;
    const dest = await onEntry({ index: index++, path, type, linkname, size: type === 'file' ? entrySize : 0, mode: number(header, 100, 8) });
    if (dest !== undefined && type === 'file') {
      const fh = await open(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
      try {
        const write = async (chunk: Buffer) => {
          for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off)).bytesWritten;
        };
        if (!(await reader.pass(dataSize, write))) throw truncated();
      } finally {
        await fh.close();
      }
    } else if (!(await reader.pass(dataSize))) {
      throw truncated();
    }
    if (!(await reader.pass(padding(dataSize)))) throw truncated();
  }
}
