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
    if (kinds.length > 0) add('scriptlet', 'warning', `${nevra}: has ${kinds.join(', ')} scriptlets, which are not run`);
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

/** One line per package: its NEVRA, then the scriptlet kinds its header has. */
export const SCRIPTS_FORMAT =
  '%{=NEVRA}\\t%|PRETRANS?{pretrans }|%|PREIN?{pre }|%|POSTIN?{post }|%|POSTTRANS?{posttrans }|%|PREUN?{preun }|%|POSTUN?{postun }|%|TRIGGERSCRIPTS?{trigger }|%|FILETRIGGERSCRIPTS?{file-trigger }|%|TRANSFILETRIGGERSCRIPTS?{transaction-file-trigger }|\\n';

export function parseScripts(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [nevra, kinds] = line.split('\t');
    out.set(nevra!, (kinds ?? '').split(' ').filter(Boolean));
  }
  return out;
}
