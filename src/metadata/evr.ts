// rpm's version ordering, for reports (diffs, cross-architecture checks); resolution itself is dnf's.

/** rpmvercmp: compares alternating numeric and alphabetic segments; `~` sorts before anything, `^` after the base. */
export function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  const isAlnum = (c: string | undefined) => c !== undefined && /[A-Za-z0-9]/.test(c);
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(a[i]) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !isAlnum(b[j]) && b[j] !== '~' && b[j] !== '^') j++;
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++;
      j++;
      continue;
    }
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (i >= a.length || j >= b.length) break;
    const numeric = /[0-9]/.test(a[i]!);
    const segment = numeric ? /^[0-9]+/ : /^[A-Za-z]+/;
    const sa = segment.exec(a.slice(i))?.[0] ?? '';
    const sb = segment.exec(b.slice(j))?.[0] ?? '';
    i += sa.length;
    j += sb.length;
    if (sb === '') return numeric ? 1 : -1; // a numeric segment is newer than an alphabetic one
    if (numeric) {
      const na = sa.replace(/^0+/, '');
      const nb = sb.replace(/^0+/, '');
      if (na.length !== nb.length) return na.length > nb.length ? 1 : -1;
      if (na !== nb) return na > nb ? 1 : -1;
    } else if (sa !== sb) {
      return sa > sb ? 1 : -1;
    }
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

export interface Evr {
  epoch: number;
  version: string;
  release: string;
}

export function compareEvr(a: Evr, b: Evr): number {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch ? 1 : -1;
  return rpmvercmp(a.version, b.version) || rpmvercmp(a.release, b.release);
}

export function formatEvr(e: Evr): string {
  return `${e.epoch ? `${e.epoch}:` : ''}${e.version}-${e.release}`;
}

export interface Nevra extends Evr {
  name: string;
  arch: string;
}

/** Parses `name-[epoch:]version-release.arch`, the form metadata.json uses. */
export function parseNevra(nevra: string): Nevra {
  const m = /^(.+)-(?:(\d+):)?([^-:]+)-([^-]+)\.([^.]+)$/.exec(nevra);
  if (!m) throw new Error(`not a NEVRA: ${nevra}`);
  return { name: m[1]!, epoch: Number(m[2] ?? 0), version: m[3]!, release: m[4]!, arch: m[5]! };
}
