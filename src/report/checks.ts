// Checks across a whole compose that dnf cannot make: one architecture never sees the others.
import type { ComposeProblem } from '../errors.js';
import { formatEvr, parseNevra } from '../metadata/evr.js';
import { byString } from '../metadata/state.js';

/** What the checks and reports read of one architecture's result. */
export interface ArchExtensions {
  arch: string;
  extensions: Record<string, {
    kind: 'os-extension' | 'development';
    requested: string[];
    matchBaseEvr?: string;
    /** The base package's EVR that match-base-evr pinned to. */
    pinnedEvr?: string;
    /** The extension's closure, NEVRA strings. */
    packages: string[];
    /** Bytes to download for the closure. */
    size: number;
  }>;
}

export interface CrossArchMismatch {
  extension: string;
  package: string;
  /** arch → EVRs of that package in the extension's closure there. */
  versions: Record<string, string[]>;
}

/**
 * The same extension resolving to different versions of one package on different architectures
 * (a mirror lagging on one arch, an arch-specific rebuild). Packages on one arch only are normal.
 */
export function crossArchMismatches(arches: ArchExtensions[]): CrossArchMismatch[] {
  const found: CrossArchMismatch[] = [];
  const names = new Set(arches.flatMap((a) => Object.keys(a.extensions)));
  for (const ext of [...names].sort()) {
    const byPackage = new Map<string, Record<string, string[]>>();
    for (const a of arches) {
      for (const nevra of a.extensions[ext]?.packages ?? []) {
        const p = parseNevra(nevra);
        const versions = byPackage.get(p.name) ?? {};
        versions[a.arch] = [...(versions[a.arch] ?? []), formatEvr(p)].sort();
        byPackage.set(p.name, versions);
      }
    }
    for (const [name, versions] of [...byPackage].sort(([x], [y]) => byString(x, y))) {
      const distinct = new Set(Object.values(versions).map((v) => v.join(',')));
      if (Object.keys(versions).length > 1 && distinct.size > 1) found.push({ extension: ext, package: name, versions });
    }
  }
  return found;
}

export interface PinMismatch {
  arch: string;
  extension: string;
  package: string;
  expected: string;
  /** EVRs found in the closure; empty when the package is missing. */
  found: string[];
}

/** Every package pinned with match-base-evr has exactly the base package's EVR (the kernel family rule). */
export function pinMismatches(arches: ArchExtensions[]): PinMismatch[] {
  const found: PinMismatch[] = [];
  for (const a of arches) {
    for (const [ext, e] of Object.entries(a.extensions)) {
      if (!e.pinnedEvr) continue;
      for (const name of e.requested) {
        const evrs = e.packages.map(parseNevra).filter((p) => p.name === name).map(formatEvr);
        if (evrs.length !== 1 || evrs[0] !== e.pinnedEvr) {
          found.push({ arch: a.arch, extension: ext, package: name, expected: e.pinnedEvr, found: evrs });
        }
      }
    }
  }
  return found;
}

export function versionsText(versions: Record<string, string[]>): string {
  return Object.entries(versions).map(([arch, v]) => `${arch} ${v.join(', ')}`).join('; ');
}

/** The problems that fail a run: every pin mismatch, and cross-architecture differences when strict. */
export function checkProblems(arches: ArchExtensions[], strictCrossArch: boolean): ComposeProblem[] {
  return [
    ...pinMismatches(arches).map((p) => ({
      arch: p.arch,
      extension: p.extension,
      message: `${p.package} must have the base's EVR ${p.expected} (match-base-evr), found ${p.found.join(', ') || 'none'}`,
    })),
    ...(strictCrossArch
      ? crossArchMismatches(arches).map((m) => ({ extension: m.extension, message: `${m.package} differs across architectures: ${versionsText(m.versions)}` }))
      : []),
  ];
}
