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
