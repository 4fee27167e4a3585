// SELinux labels from a file_contexts, as libselinux's file backend (label_file.c) gives them:
// for mksquashfs, which (unlike mkfs.erofs --file-contexts) cannot look them up itself. Pure.

/** A file_contexts type field → the file type it restricts a line to. */
const TYPES: Record<string, number> = { '--': 0o100000, '-d': 0o040000, '-l': 0o120000, '-c': 0o020000, '-b': 0o060000, '-p': 0o010000, '-s': 0o140000 };

/** libselinux's regex_chars: a spec without any is an exact path. */
const META = /[.^$?*+|[({]/;

/** POSIX classes PCRE takes inside brackets and JavaScript does not. */
const POSIX: Record<string, string> = {
  alpha: 'A-Za-z', digit: '0-9', alnum: 'A-Za-z0-9', upper: 'A-Z', lower: 'a-z', space: ' \\t\\n\\r\\f\\v',
  xdigit: '0-9A-Fa-f', punct: '!-\\/:-@\\[-`{-~', blank: ' \\t', cntrl: '\\x00-\\x1f\\x7f', print: ' -~', graph: '!-~', word: 'A-Za-z0-9_',
};

interface Spec {
  /** Position in priority order: the first matching spec wins. */
  rank: number;
  /** What every path it matches starts with: most rules are skipped on it alone. */
  prefix: string;
  /** label_file.c get_stem_from_spec: the first component when nothing before it is special; only paths with that first component are tried. */
  stem: string;
  regex: RegExp;
  /** File type bits, or 0 for any. */
  type: number;
  /** null: `<<none>>`, the file gets no label. */
  context: string | null;
}

interface Sub {
  src: string;
  dst: string;
}

export interface FileContexts {
  /** By a path's first component (`/usr`), as libselinux's stems: rules whose literal prefix has one. */
  byStem: Map<string, Spec[]>;
  /** Rules that may match under any first component. */
  anyStem: Spec[];
  subs: Sub[];
  distSubs: Sub[];
}

export interface FileContextsText {
  fileContexts: string;
  /** Read after the main file, as libselinux does: later lines win. */
  local?: string;
  subs?: string;
  subsDist?: string;
}

/**
 * The literal start of a pattern: up to its first meta character (a character before a quantifier
 * is optional, so not part of it); nothing when an alternation could start elsewhere.
 */
function literalPrefix(regex: string): string {
  let depth = 0;
  for (let i = 0; i < regex.length; i++) {
    const c = regex[i]!;
    if (c === '\\') i++;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) return '';
  }
  let prefix = '';
  for (let i = 0; i < regex.length; i++) {
    const c = regex[i]!;
    if (c === '\\' && i + 1 < regex.length && !/[A-Za-z0-9]/.test(regex[i + 1]!)) prefix += regex[++i];
    else if (c === '\\' || META.test(c)) return /[?*{]/.test(c) ? prefix.slice(0, -1) : prefix;
    else prefix += c;
  }
  return prefix;
}

/** label_file.h regex_chars, for stems. */
const STEM_META = /[\^.[$()|*+?{\\]/;

function specStem(regex: string): string {
  const slash = regex.indexOf('/', 1);
  return slash > 0 && !STEM_META.test(regex.slice(0, slash)) ? regex.slice(0, slash) : '';
}

/** `/usr` of `/usr/bin/x`; '' when there is no second component (libselinux's file stem). */
const stemOf = (path: string): string => {
  const slash = path.indexOf('/', 1);
  return path.startsWith('/') && slash > 0 ? path.slice(0, slash) : '';
};

function hasMeta(regex: string): boolean {
  for (let i = 0; i < regex.length; i++) {
    if (regex[i] === '\\') i++;
    else if (META.test(regex[i]!)) return true;
  }
  return false;
}

function parseSpecs(text: string, where: string, errors: string[]): { spec: Spec; exact: boolean }[] {
  const out: { spec: Spec; exact: boolean }[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    const [regex, typeOrContext, maybeContext] = fields;
    const typeField = fields.length >= 3 ? typeOrContext! : undefined;
    const context = fields.length >= 3 ? maybeContext! : typeOrContext;
    if (!regex || !context || fields.length > 3 || (typeField !== undefined && !(typeField in TYPES))) {
      errors.push(`${where}:${i + 1}: not a file_contexts line: ${JSON.stringify(raw)}`);
      continue;
    }
    let compiled: RegExp;
    try {
      // Anchored as libselinux does, without a group: `^a|b$`.
      compiled = new RegExp(`^${regex.replace(/\[:([a-z]+):\]/g, (m, name: string) => POSIX[name] ?? m)}$`);
    } catch (err) {
      errors.push(`${where}:${i + 1}: ${(err as Error).message}`);
      continue;
    }
    out.push({ spec: { rank: 0, prefix: literalPrefix(regex), stem: specStem(regex), regex: compiled, type: typeField ? TYPES[typeField]! : 0, context: context === '<<none>>' ? null : context }, exact: !hasMeta(regex) });
  }
  return out;
}

/** `src dst` lines; libselinux checks the last line first and ignores a substitution of `/`. */
function parseSubs(text: string | undefined): Sub[] {
  const subs: Sub[] = [];
  for (const raw of (text ?? '').split('\n')) {
    const [src, dst] = raw.trim().split(/\s+/);
    if (!src || src.startsWith('#') || !dst || src === '/') continue;
    subs.unshift({ src, dst });
  }
  return subs;
}

/** The rules, or every line libselinux's matching cannot be reproduced for. */
export function parseFileContexts(t: FileContextsText): FileContexts | { errors: string[] } {
  const errors: string[] = [];
  const all = [...parseSpecs(t.fileContexts, 'file_contexts', errors), ...parseSpecs(t.local ?? '', 'file_contexts.local', errors)];
  if (errors.length > 0) return { errors };
  // label_file.c sort_specs: exact paths after the regular expressions; the last match wins.
  const specs = [...all.filter((s) => !s.exact), ...all.filter((s) => s.exact)].map((s) => s.spec).reverse();
  const byStem = new Map<string, Spec[]>();
  const anyStem: Spec[] = [];
  for (const [rank, spec] of specs.entries()) {
    spec.rank = rank;
    const stem = spec.stem;
    if (stem) byStem.set(stem, [...(byStem.get(stem) ?? []), spec]);
    else anyStem.push(spec);
  }
  return { byStem, anyStem, subs: parseSubs(t.subs), distSubs: parseSubs(t.subsDist) };
}

function substitute(subs: Sub[], path: string): string | undefined {
  for (const { src, dst } of subs) {
    if (path.startsWith(src) && (path.length === src.length || path[src.length] === '/')) {
      return dst + path.slice(dst === '/' && path[src.length] === '/' ? src.length + 1 : src.length);
    }
  }
  return undefined;
}

/** The label of an absolute path with its st_mode, or undefined for none (no match or `<<none>>`). */
export function lookupLabel(fc: FileContexts, path: string, mode: number): string | undefined {
  let key = path.replace(/\/{2,}/g, '/');
  // label_file.c selabel_sub_key: .subs first, then .subs_dist on its result (or on the path).
  const local = substitute(fc.subs, key);
  key = (local !== undefined ? substitute(fc.distSubs, local) ?? local : substitute(fc.distSubs, key)) ?? key;
  const type = mode & 0o170000;
  const stemmed = fc.byStem.get(stemOf(key)) ?? [];
  // Both lists in priority order: merged, the first match is the one libselinux finds.
  for (let i = 0, j = 0; i < stemmed.length || j < fc.anyStem.length;) {
    const spec = j >= fc.anyStem.length || (i < stemmed.length && stemmed[i]!.rank < fc.anyStem[j]!.rank) ? stemmed[i++]! : fc.anyStem[j++]!;
    if (key.startsWith(spec.prefix) && (spec.type === 0 || spec.type === type) && spec.regex.test(key)) return spec.context ?? undefined;
  }
  return undefined;
}

/**
 * A `0t` xattr value: printable bytes as they are, any other (space, backslash, quote, control,
 * non-ASCII) as `\ooo`. Not `0x`: mksquashfs 4.6.1 corrupts its heap decoding hex values.
 */
function textValue(value: string): string {
  return [...Buffer.from(value, 'utf8')].map((b) => (b > 0x20 && b < 0x7f && b !== 0x5c && b !== 0x22 ? String.fromCharCode(b) : `\\${b.toString(8).padStart(3, '0')}`)).join('');
}

/**
 * mksquashfs (4.6 or later) pseudo definitions that label every path of the image: `entries` are
 * absolute paths with their st_mode. No trailing NUL, as mkfs.erofs stores labels.
 */
export function labelPseudoFile(fc: FileContexts, entries: { path: string; mode: number }[]): string {
  const lines: string[] = [];
  for (const { path, mode } of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const label = lookupLabel(fc, path, mode);
    if (label === undefined) continue;
    const quoted = `"${path.replace(/["\\]/g, (c) => `\\${c}`)}"`;
    lines.push(`${quoted} x security.selinux=0t${textValue(label)}\n`);
  }
  return lines.join('');
}

/** `mksquashfs version 4.6.1 (2023/03/25)` → [4, 6, 1]. */
export function parseMksquashfsVersion(text: string): number[] | undefined {
  const m = /mksquashfs version (\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/** Pseudo-file extended attributes (`x`) came with squashfs-tools 4.6. */
export const labelsInPseudoFiles = (version: number[] | undefined): boolean => version !== undefined && (version[0]! > 4 || (version[0] === 4 && version[1]! >= 6));
