import { createHash } from 'node:crypto';
import type { BaseInfo } from '../base/types.js';
import type { ArchPlan } from '../plan/types.js';
import type { SolveResult } from '../solve/types.js';

/** A package file as written into `<output>/<arch>/`. */
export interface PackageFile {
  /** Path relative to the arch directory. */
  filename: string;
  /** sha256 (hex) of the file as written. */
  sha256: string;
  /** Where it was fetched from (user-info removed), when known; not part of the state. */
  url?: string;
}

/** One composed architecture: what the state checksum and metadata.json are computed from. */
export interface ComposedArch {
  plan: ArchPlan;
  base: BaseInfo;
  solve: SolveResult;
  /** NEVRA → the file written for it; one entry per resolved package. */
  files: Readonly<Record<string, PackageFile>>;
  /** With sysext on: the options that shape its images. Absent, the checksum is what it was before sysext existed. */
  sysextOptions?: SysextState;
}

/** What of the sysext options changes an architecture's output (src/sysext/index.ts sysextState). */
export interface SysextState {
  /** The os-extensions of this architecture that get an image. */
  extensions: string[];
  format: string;
  compression: string | null;
  anyId: boolean;
  url: string | null;
  /** An image that passed may fail under a stricter run: that run must not count as unchanged. */
  strict: string[];
}

/** Code-unit order: locale-independent, so sums and files are the same on every machine. */
export const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
export const sorted = (xs: readonly string[]): string[] => [...xs].sort(byString);

/**
 * JSON with object keys sorted by UTF-16 code unit and no whitespace (the RFC 8785 ordering), so
 * equal values give equal text whatever the insertion order. Undefined properties are dropped.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort(byString);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError(`canonicalJson: ${value} is not JSON`);
  if (value === undefined || typeof value === 'function' || typeof value === 'bigint' || typeof value === 'symbol') {
    throw new TypeError(`canonicalJson: ${typeof value} is not JSON`);
  }
  return JSON.stringify(value);
}

export const sha256Hex = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** `sha256:<hex>` of a value's canonical JSON. */
export const sha256Of = (value: unknown): string => `sha256:${sha256Hex(canonicalJson(value))}`;

function normalisePlan(plan: ArchPlan) {
  return {
    arch: plan.arch,
    releasever: plan.releasever,
    weakDeps: plan.weakDeps,
    extensions: [...plan.extensions]
      .sort((a, b) => byString(a.name, b.name))
      .map((e) => ({
        name: e.name,
        kind: e.kind,
        requested: sorted(e.requested),
        matchBaseEvr: e.matchBaseEvr ?? null,
        specs: sorted(e.specs),
        repos: sorted(e.repos),
      })),
  };
}

/** A commit or digest names the base exactly; a rootfs has no id, so its package set stands in. */
function baseIdentity(base: BaseInfo) {
  if (base.source === 'ostree' && base.commit) return { source: base.source, commit: base.commit };
  if (base.source === 'image' && base.digest) return { source: base.source, digest: base.digest };
  return { source: base.source, packages: sorted(base.packages.map((p) => p.nevra)) };
}

/**
 * `sha256:<hex>` over everything one architecture's output is made of: the plan, the base, each
 * package file (development ones too: rpm-ostree's own checksum leaves them out), each
 * extension's closure and, with sysext on, its options.
 */
export function stateChecksum({ plan, base, solve, files, sysextOptions }: ComposedArch): string {
  const packages = solve.packages
    .map((p) => {
      const file = files[p.nevra];
      if (!file) throw new Error(`stateChecksum: no file recorded for ${p.nevra}`);
      return { nevra: p.nevra, sha256: file.sha256 };
    })
    .sort((a, b) => byString(a.nevra, b.nevra));
  const closures = Object.fromEntries(Object.entries(solve.closures).map(([name, c]) => [name, sorted(c)]));
  return sha256Of({
    kind: 'compose-extensions/state/v1',
    plan: normalisePlan(plan),
    base: baseIdentity(base),
    packages,
    closures,
    // Only with sysext on, so that every other run keeps the checksum earlier versions gave it.
    ...(sysextOptions && { sysext: { ...sysextOptions, extensions: sorted(sysextOptions.extensions), strict: sorted(sysextOptions.strict) } }),
  });
}

/** One checksum for a multi-architecture run: sha256 over the sorted `arch=state` lines; for one architecture, its own. */
export function combinedState(arches: readonly { arch: string; stateChecksum: string }[]): string {
  if (arches.length === 1) return arches[0]!.stateChecksum;
  const lines = arches.map((a) => `${a.arch}=${a.stateChecksum}\n`).sort().join('');
  return `sha256:${createHash('sha256').update(lines).digest('hex')}`;
}
