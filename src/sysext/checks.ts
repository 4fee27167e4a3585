// What an image means for the base it extends: paths it shadows, scriptlets that will not run,
// sysusers entries and kernel modules the host must handle. Pure: the stage gathers the inputs.
import { fileType, type HeaderFile } from './layout.js';

export const FINDING_CLASSES = ['shadow', 'scriptlet', 'sysusers', 'kmod'] as const;
export type FindingClass = (typeof FINDING_CLASSES)[number];

export interface Finding {
  class: FindingClass;
  /** An error refuses the image; a warning is listed for the user to handle. */
  severity: 'error' | 'warning';
  message: string;
}

/** A path the base's rpmdb records: digest ('' for directories and symlinks) and mode. */
export interface BaseFile {
  digest: string;
  mode: number;
  linkTo: string;
}

const KMOD = /^\/usr\/lib\/modules\/[^/]+\/.+\.ko(\.(xz|zst|gz))?$/;

/**
 * `placed`: the files the image ships, by their packaged path. `scripts`: nevra → the scriptlet
 * kinds its header has. `strict`: classes whose warnings become errors.
 */
export function checkAgainstBase(
  placed: HeaderFile[],
  baseFiles: ReadonlyMap<string, BaseFile>,
  scripts: ReadonlyMap<string, string[]>,
  strict: readonly FindingClass[],
): Finding[] {
  const out: Finding[] = [];
  const add = (cls: FindingClass, severity: Finding['severity'], message: string) =>
    out.push({ class: cls, severity: severity === 'warning' && strict.includes(cls) ? 'error' : severity, message });
  for (const f of placed) {
    const type = fileType(f.mode);
    if (type === 'dir') continue; // shared directories are how packages coexist
    const b = baseFiles.get(f.path);
    if (b) {
      const same = b.mode === f.mode && b.digest === f.digest && b.linkTo === f.linkTo;
      if (same) add('shadow', 'warning', `${f.nevra}: ${f.path} is also in the base, identical`);
      else add('shadow', 'error', `${f.nevra}: ${f.path} is also in the base, with different contents: the image would hide the base's file`);
    }
    if (f.path.startsWith('/usr/lib/sysusers.d/')) add('sysusers', 'warning', `${f.nevra}: ${f.path} declares users or groups: systemd-sysusers must run on the host`);
    if (KMOD.test(f.path)) add('kmod', 'warning', `${f.nevra}: ${f.path} is a kernel module: depmod cannot run for it inside an extension`);
  }
  for (const [nevra, kinds] of [...scripts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const scripts = kinds.filter((k) => k !== 'alternatives');
    if (scripts.length > 0) add('scriptlet', 'warning', `${nevra}: has ${scripts.join(', ')} scriptlets, which are not run`);
    if (kinds.includes('alternatives')) add('scriptlet', 'warning', `${nevra}: a scriptlet calls alternatives: the links it would make are not in the image`);
  }
  return out;
}

/** `rpm -q[p] --qf` for the base's files; parsed by parseBaseFiles. */
export const BASE_FILES_FORMAT = '[%{FILENAMES}\\t%{FILEMODES}\\t%{FILEDIGESTS}\\t%{FILELINKTOS}\\n]';

export function parseBaseFiles(text: string): Map<string, BaseFile> {
  const files = new Map<string, BaseFile>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [path, mode, digest, linkTo] = line.split('\t');
    const opt = (v: string | undefined) => (v === undefined || v === '(none)' ? '' : v);
    files.set(path!, { mode: Number(mode), digest: opt(digest), linkTo: opt(linkTo) });
  }
  return files;
}

// Scriptlet bodies can hold tabs and newlines: fields and records are split by ASCII unit and
// record separators, which shell scripts do not contain.
const US = '\u001f';
const RS = '\u001e';
const BODIES = [['pretrans', 'PRETRANS'], ['pre', 'PREIN'], ['post', 'POSTIN'], ['posttrans', 'POSTTRANS'], ['preun', 'PREUN'], ['postun', 'POSTUN']] as const;
const TRIGGERS = [['trigger', 'TRIGGERSCRIPTS'], ['file-trigger', 'FILETRIGGERSCRIPTS'], ['transaction-file-trigger', 'TRANSFILETRIGGERSCRIPTS']] as const;

/** Per package: NEVRA, each scriptlet body (`(none)` when absent), then which trigger kinds exist. */
export const SCRIPTS_FORMAT =
  `%{=NEVRA}${BODIES.map(([, tag]) => `${US}%{${tag}}`).join('')}${TRIGGERS.map(([kind, tag]) => `${US}%|${tag}?{${kind}}|`).join('')}${RS}`;

/** nevra → the scriptlet kinds it has, `alternatives` added when a body calls it. */
export function parseScripts(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const record of text.split(RS)) {
    const fields = record.replace(/^\n/, '').split(US);
    if (fields.length < 1 + BODIES.length) continue;
    const [nevra, ...rest] = fields;
    const bodies = rest.slice(0, BODIES.length);
    const kinds: string[] = BODIES.filter((_, i) => bodies[i] !== '(none)' && bodies[i] !== '').map(([kind]) => kind);
    kinds.push(...rest.slice(BODIES.length).filter(Boolean));
    // alternatives(8) links are made by a scriptlet: an extension ships none of them.
    if (bodies.some((b) => b !== '(none)' && /\b(update-)?alternatives\b/.test(b!))) kinds.push('alternatives');
    out.set(nevra!, kinds);
  }
  return out;
}

/** A fixed id a sysusers.d file of the image declares, and which file. */
export interface DeclaredId {
  id: number;
  file: string;
}

/** Users and groups with fixed ids in sysusers.d files; the first file by name wins, as systemd-sysusers reads them. */
export interface SysusersIds {
  users: Map<string, DeclaredId>;
  groups: Map<string, DeclaredId>;
}

/**
 * `u name 123` declares user name (and its group of the same name, 123, unless a `g` line names
 * it); `u name 123:456` only the user (its primary group is 456, no group of its name is made);
 * `g name 456` the group. `-`, a path or a name in the id field leaves the id to the host.
 */
export function parseSysusers(files: { path: string; text: string }[]): SysusersIds {
  const users = new Map<string, DeclaredId>();
  const groups = new Map<string, DeclaredId>();
  const implicit = new Map<string, DeclaredId>();
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  for (const { path, text } of [...files].sort((a, b) => (base(a.path) < base(b.path) ? -1 : base(a.path) > base(b.path) ? 1 : 0))) {
    for (const line of text.split('\n')) {
      const [type, name, id] = line.trim().split(/\s+/);
      if (!type || type.startsWith('#') || !name || !id) continue;
      const user = /^(\d+)(?::(.*))?$/.exec(id);
      if ((type === 'u' || type === 'u!') && user) {
        if (!users.has(name)) users.set(name, { id: Number(user[1]), file: path });
        if (user[2] === undefined && !implicit.has(name)) implicit.set(name, { id: Number(user[1]), file: path });
      } else if (type === 'g' && /^\d+$/.test(id) && !groups.has(name)) groups.set(name, { id: Number(id), file: path });
    }
  }
  for (const [name, d] of implicit) if (!groups.has(name)) groups.set(name, d);
  return { users, groups };
}

export interface ResolvedOwners {
  /** name → id for every owner of the placed files (root is 0). */
  users: Map<string, number>;
  groups: Map<string, number>;
  findings: Finding[];
}

/**
 * Numeric owners for the image. A name the base defines takes the base's id; else the fixed id of
 * the image's own sysusers.d (systemd-sysusers creates it with that id on the host); else root, the
 * one owner that needs no account: a read-only image gives root no more than the owner had, except
 * through setuid or setgid, so such a file is refused instead.
 */
export function resolveOwners(
  placed: HeaderFile[],
  base: { users: ReadonlyMap<string, number>; groups: ReadonlyMap<string, number> },
  declared: SysusersIds,
  strict: readonly FindingClass[],
): ResolvedOwners {
  const findings: Finding[] = [];
  const users = new Map<string, number>([['root', 0]]);
  const groups = new Map<string, number>([['root', 0]]);
  // Per package and owner: every path, so a tree owned by one user is one finding.
  const missing = new Map<string, { nevra: string; kind: 'user' | 'group'; name: string; paths: string[] }>();
  const errors: string[] = [];
  for (const f of placed) {
    for (const kind of ['user', 'group'] as const) {
      const name = kind === 'user' ? f.user : f.group;
      const known = kind === 'user' ? base.users : base.groups;
      const ids = kind === 'user' ? users : groups;
      if (name === 'root') continue;
      if (known.has(name)) {
        ids.set(name, known.get(name)!);
        continue;
      }
      const fixed = (kind === 'user' ? declared.users : declared.groups).get(name);
      ids.set(name, fixed?.id ?? 0);
      const key = `${f.nevra}\0${kind}\0${name}`;
      if (!missing.has(key)) missing.set(key, { nevra: f.nevra, kind, name, paths: [] });
      missing.get(key)!.paths.push(f.path);
      const bit = kind === 'user' ? 0o4000 : 0o2000;
      if (!fixed && fileType(f.mode) === 'file' && f.mode & bit) {
        errors.push(`${f.nevra}: ${f.path} is set${kind[0]}id ${kind} ${name}, which the base does not define and no sysusers.d file of the image gives a fixed id: owned by root instead, it would run as root`);
      }
    }
  }
  for (const m of missing.values()) {
    const fixed = (m.kind === 'user' ? declared.users : declared.groups).get(m.name);
    const more = m.paths.length > 1 ? ` (and ${m.paths.length - 1} more)` : '';
    const what = `${m.nevra}: ${m.paths[0]}${more} ${m.paths.length > 1 ? 'are' : 'is'} owned by ${m.kind} ${m.name}, which the base does not define`;
    const message = fixed
      ? `${what}: the image uses ${fixed.id}, its fixed id in ${fixed.file}`
      : `${what} and no sysusers.d file of the image gives a fixed id: ${m.kind === 'user' ? 'root owns' : 'group root owns'} ${m.paths.length > 1 ? 'them' : 'it'} in the image instead`;
    findings.push({ class: 'sysusers', severity: strict.includes('sysusers') ? 'error' : 'warning', message });
  }
  for (const message of errors) findings.push({ class: 'sysusers', severity: 'error', message });
  return { users, groups, findings };
}
