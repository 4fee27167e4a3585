// Package differences between two composes of the same architecture, per extension.
import { compareEvr, formatEvr, parseNevra, type Nevra } from '../metadata/evr.js';
import { byString } from '../metadata/state.js';

/** What a diff reads of a compose: each extension's closure as NEVRA strings (metadata.json has it). */
export interface Closures {
  extensions: Record<string, { packages: string[] }>;
}

export interface PackageChange {
  name: string;
  arch: string;
  /** EVR before; absent for an added package. */
  from?: string;
  /** EVR after; absent for a removed package. */
  to?: string;
}

export interface ExtensionDiff {
  added: PackageChange[];
  removed: PackageChange[];
  upgraded: PackageChange[];
  downgraded: PackageChange[];
}

export interface ArchDiff {
  arch: string;
  addedExtensions: string[];
  removedExtensions: string[];
  /** Only extensions with at least one change. */
  extensions: Record<string, ExtensionDiff>;
}

const byName = (a: PackageChange, b: PackageChange) => byString(a.name, b.name) || byString(a.arch, b.arch);

/** Pairs packages by name and arch; an installonly name at several versions pairs newest with newest. */
export function diffPackages(before: string[], after: string[]): ExtensionDiff {
  const group = (list: string[]) => {
    const map = new Map<string, Nevra[]>();
    for (const p of list.map(parseNevra)) map.set(`${p.name}.${p.arch}`, [...(map.get(`${p.name}.${p.arch}`) ?? []), p]);
    for (const l of map.values()) l.sort(compareEvr);
    return map;
  };
  const old = group(before);
  const now = group(after);
  const diff: ExtensionDiff = { added: [], removed: [], upgraded: [], downgraded: [] };
  for (const key of new Set([...old.keys(), ...now.keys()])) {
    const a = old.get(key) ?? [];
    const b = now.get(key) ?? [];
    const { name, arch } = (a[0] ?? b[0])!;
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      // Align from the newest end, so one more installonly version reads as an addition.
      const x = a[a.length - 1 - i];
      const y = b[b.length - 1 - i];
      if (x && !y) diff.removed.push({ name, arch, from: formatEvr(x) });
      else if (!x && y) diff.added.push({ name, arch, to: formatEvr(y) });
      else if (x && y) {
        const order = compareEvr(y, x);
        if (order > 0) diff.upgraded.push({ name, arch, from: formatEvr(x), to: formatEvr(y) });
        if (order < 0) diff.downgraded.push({ name, arch, from: formatEvr(x), to: formatEvr(y) });
      }
    }
  }
  for (const list of Object.values(diff)) list.sort(byName);
  return diff;
}

export function isEmpty(d: ExtensionDiff): boolean {
  return d.added.length + d.removed.length + d.upgraded.length + d.downgraded.length === 0;
}

export function diffArch(arch: string, previous: Closures, current: Closures): ArchDiff {
  const names = new Set([...Object.keys(previous.extensions), ...Object.keys(current.extensions)]);
  const result: ArchDiff = { arch, addedExtensions: [], removedExtensions: [], extensions: Object.create(null) }; // extension names such as `__proto__` are keys
  for (const name of [...names].sort()) {
    const before = previous.extensions[name]?.packages;
    const after = current.extensions[name]?.packages;
    if (!before) result.addedExtensions.push(name);
    if (!after) result.removedExtensions.push(name);
    const d = diffPackages(before ?? [], after ?? []);
    if (!isEmpty(d)) result.extensions[name] = d;
  }
  return result;
}

export function archDiffIsEmpty(d: ArchDiff): boolean {
  return d.addedExtensions.length + d.removedExtensions.length + Object.keys(d.extensions).length === 0;
}
