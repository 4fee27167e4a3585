// The `sysext` input (action) and `--sysext` flag (CLI): parsed and checked against extensions.yaml.
import { UsageError } from '../errors.js';
import type { ExtensionsConfig } from '../inputs/extensions-yaml.js';
import type { SysextFormat } from './build.js';
import type { SysextOptions } from './index.js';
import { FINDING_CLASSES, type FindingClass } from './checks.js';

const FORMATS: readonly SysextFormat[] = ['erofs', 'squashfs'];
/** What erofs-utils 1.5 and squashfs-tools 4.5 offer. */
export const COMPRESSIONS: Record<SysextFormat, readonly string[]> = { erofs: ['lz4', 'lz4hc'], squashfs: ['gzip', 'xz', 'zstd', 'lzo', 'lz4'] };

export interface SysextFlags {
  format?: string;
  url?: string;
  strict?: string;
  compression?: string;
  anyId?: boolean;
}

/**
 * `true`/`''` (a bare `--sysext`): every os-extension; `false`/undefined: off; else a comma- or
 * newline-separated list of extension names.
 */
export function parseSysext(value: string | undefined, format: string | undefined, what: string, url?: string, strict?: string, more: Pick<SysextFlags, 'compression' | 'anyId'> = {}): SysextOptions | undefined {
  const fmt = (format || 'erofs') as SysextFormat;
  if (more.compression && FORMATS.includes(fmt) && !COMPRESSIONS[fmt].includes(more.compression)) {
    throw new UsageError(`${what}-compression for ${fmt} must be one of ${COMPRESSIONS[fmt].join(', ')}, not ${JSON.stringify(more.compression)}`);
  }
  const classes = (strict ?? '').split(/[,\n]/).map((s) => s.trim()).filter(Boolean);
  const unknown = classes.filter((c) => !(FINDING_CLASSES as readonly string[]).includes(c));
  if (unknown.length > 0) throw new UsageError(`${what}-strict takes ${FINDING_CLASSES.join(', ')}, not ${unknown.map((c) => JSON.stringify(c)).join(', ')}`);
  if (format !== undefined && format !== '' && !FORMATS.includes(format as SysextFormat)) {
    throw new UsageError(`${what}-format must be one of ${FORMATS.join(', ')}, not ${JSON.stringify(format)}`);
  }
  const v = value?.trim();
  if (v === undefined || v === 'false') return undefined;
  const extensions = v === '' || v === 'true' ? true : v.split(/[,\n]/).map((s) => s.trim()).filter(Boolean);
  if (url && !/^https?:\/\/[^\s]+$/.test(url)) throw new UsageError(`${what}-url must be an http(s) URL, not ${JSON.stringify(url)}`);
  return { extensions, ...(format && { format: format as SysextFormat }), ...(url && { url }), ...(classes.length > 0 && { strict: classes as FindingClass[] }), ...(more.compression && { compression: more.compression }), ...(more.anyId && { anyId: true }) };
}

/** Every name in the list must be an os-extension of the file (a development one has no image). */
export function checkSysextNames(config: ExtensionsConfig, options: SysextOptions): void {
  if (options.extensions === true) return;
  const kinds = new Map(config.extensions.map((e) => [e.name, e.kind]));
  const bad = options.extensions.flatMap((n) =>
    !kinds.has(n) ? [`sysext: ${JSON.stringify(n)} is not an extension of ${config.file}`]
    : kinds.get(n) !== 'os-extension' ? [`sysext: ${JSON.stringify(n)} is a development extension; only os-extensions become system extension images`]
    : []);
  if (bad.length > 0) throw new UsageError(bad);
}
