// Repo definitions: .repo files from a directory and ID=URL pairs from the command line.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, escapeControl, UsageError, type ConfigProblem } from '../errors.js';
import { redactUrls } from '../tools/redact.js';

export interface RepoDefinition {
  id: string;
  /** Where it was defined: `file:line`, or `--repo` for a command-line pair. */
  origin: string;
  /** Options as written (keys lower-case); `$basearch`/`$releasever` are expanded by dnf. */
  options: Record<string, string>;
}

/** dnf reads `[main]` in any config file as its global section, never as a repo. */
const RESERVED_IDS = new Set(['main']);
const ID_PATTERN = /^[A-Za-z0-9_.:-]+$/;
/** dnf's option names; anything else in a key could only be a mistake or an injection. */
const KEY_PATTERN = /^[a-z0-9_]+$/;
/** A control character (tab aside) would end the line or confuse dnf's INI reader. */
const VALUE_CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;
const codePoint = (c: string) => `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;

/** Parses one .repo (INI) file; continuation lines (leading white space) extend the last value. */
export function parseRepoFile(text: string, file: string): { repos: RepoDefinition[]; problems: ConfigProblem[] } {
  const repos: RepoDefinition[] = [];
  const problems: ConfigProblem[] = [];
  let current: RepoDefinition | undefined;
  /** A section was seen (a rejected one too: its options are not reported again). */
  let inSection = false;
  let lastKey: string | undefined;
  text.split('\n').forEach((rawLine, index) => {
    const line = index + 1;
    const raw = rawLine.replace(/\r$/, ''); // CRLF files
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) return;
    const control = VALUE_CONTROL.exec(raw);
    if (control) {
      problems.push({
        file, line, col: control.index + 1, path: current?.id ?? '',
        message: `control character ${codePoint(control[0])} in the line; a .repo line holds one key=value`,
      });
      return;
    }
    const section = /^\[(.*)\]$/.exec(trimmed);
    if (section) {
      const id = section[1]!.trim();
      lastKey = undefined;
      current = undefined;
      inSection = true;
      if (RESERVED_IDS.has(id)) {
        problems.push({ file, line, col: 2, path: id, message: `[${id}] is dnf's global section, not a repo; give the repo another id` });
      } else if (!ID_PATTERN.test(id)) {
        problems.push({ file, line, col: 2, path: id, message: `invalid repo id "${id}"` });
      } else {
        current = { id, origin: `${file}:${line}`, options: Object.create(null) };
        repos.push(current);
      }
      return;
    }
    if (/^\s/.test(raw) && lastKey) {
      if (current) current.options[lastKey] += ' ' + trimmed;
      return;
    }
    const eq = trimmed.indexOf('=');
    if (eq <= 0) {
      // Not echoed whole: a mistyped `password s3cret` or a bare URL with user-info would be printed.
      problems.push({ file, line, col: 1, path: current?.id ?? '', message: `expected key=value, found "${redactUrls(trimmed.split(/[\s=]/, 1)[0]!)}…"` });
      return;
    }
    lastKey = trimmed.slice(0, eq).trim().toLowerCase();
    if (!KEY_PATTERN.test(lastKey)) {
      problems.push({ file, line, col: 1, path: current?.id ?? '', message: `invalid option name "${lastKey}": dnf options are made of a-z, 0-9 and _` });
      lastKey = undefined;
      return;
    }
    if (!inSection) {
      problems.push({ file, line, col: 1, path: '', message: `option "${lastKey}" outside a section: put it under a [repo-id] header` });
    }
    if (current) current.options[lastKey] = trimmed.slice(eq + 1).trim(); // else: a rejected section, already reported
  });
  return { repos, problems };
}

/** A `ID=URL` pair: a repo with just a baseurl. No key is known for it, so no signature check. */
export function parseRepoPair(pair: string): RepoDefinition {
  const eq = pair.indexOf('=');
  const id = pair.slice(0, eq);
  const url = pair.slice(eq + 1);
  const shown = escapeControl(pair);
  if (eq <= 0 || !url) throw new UsageError(`--repo expects ID=URL, got "${shown}"`);
  if (RESERVED_IDS.has(id) || !ID_PATTERN.test(id)) throw new UsageError(`--repo ${shown}: invalid repo id "${escapeControl(id)}"`);
  // The URL becomes a line of the .repo file dnf reads: a newline would inject options or sections.
  if (/[\s\u0000-\u001f\u007f]/.test(url)) {
    throw new UsageError(`--repo ${shown}: the URL must not contain white space or control characters`);
  }
  if (!/^(https?|file):\/\//.test(url) && !url.startsWith('/')) {
    throw new UsageError(`--repo ${shown}: the URL must be http://, https://, file:// or an absolute path`);
  }
  return { id, origin: '--repo', options: { name: id, baseurl: url.startsWith('/') ? `file://${url}` : url, gpgcheck: '0' } };
}

/**
 * All known repos: every `*.repo` file in `reposDir` (sorted, so the first definition of an id is
 * predictable), then the pairs, which replace a file's repo of the same id.
 */
export async function loadRepos(reposDir: string | undefined, pairs: string[]): Promise<RepoDefinition[]> {
  const byId = new Map<string, RepoDefinition>();
  const problems: ConfigProblem[] = [];
  if (reposDir) {
    let names: string[];
    try {
      names = (await readdir(reposDir)).filter((n) => n.endsWith('.repo')).sort();
    } catch (err) {
      throw new UsageError(`cannot read repos directory ${reposDir}: ${(err as Error).message}`);
    }
    for (const name of names) {
      const file = join(reposDir, name);
      const parsed = parseRepoFile(await readFile(file, 'utf8'), file);
      problems.push(...parsed.problems);
      for (const repo of parsed.repos) {
        const first = byId.get(repo.id);
        if (first) {
          const [f, l] = splitOrigin(repo.origin);
          problems.push({ file: f, line: l, col: 2, path: repo.id, message: `repo "${repo.id}" is already defined at ${first.origin}` });
        } else byId.set(repo.id, repo);
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  for (const pair of pairs) {
    const repo = parseRepoPair(pair);
    byId.set(repo.id, repo);
  }
  return [...byId.values()];
}

function splitOrigin(origin: string): [string, number] {
  const at = origin.lastIndexOf(':');
  return [origin.slice(0, at), Number(origin.slice(at + 1))];
}

/**
 * The .repo text dnf is given: only the repos a run uses, enabled, and never silently skipped
 * (Debian's dnf.conf sets skip_if_unavailable=True, which turns a broken repo into an empty result).
 */
export function renderRepoFile(repos: RepoDefinition[]): string {
  return repos
    .map((repo) => {
      // Parsing validated all of this; checked again because one bad value rewrites dnf's config.
      if (RESERVED_IDS.has(repo.id) || !ID_PATTERN.test(repo.id)) throw new Error(`refusing to write repo id ${JSON.stringify(repo.id)} into a .repo file`);
      const options = { ...repo.options, enabled: '1', skip_if_unavailable: '0' };
      for (const [k, v] of Object.entries(options)) {
        if (!KEY_PATTERN.test(k) || VALUE_CONTROL.test(v))
          throw new Error(`refusing to write option ${JSON.stringify(k)}=${JSON.stringify(v)} of repo ${repo.id} into a .repo file`);
      }
      const body = Object.entries(options).map(([k, v]) => `${k}=${v}`).join('\n');
      return `[${repo.id}]\n${body}\n`;
    })
    .join('\n');
}


/** Where dnf reads repo variables by default; later directories win, as in dnf. */
export const DEFAULT_VARS_DIRS = ['/etc/dnf/vars', '/etc/yum/vars'];
const VAR_NAME = /^[A-Za-z0-9_]+$/;

/**
 * Repo variables as dnf reads them: one file per variable in each vars directory (its first line,
 * without the newline), then `DNF_VAR_<name>` and `DNF0`…`DNF9` from the environment, which win.
 * Read here, not by each backend, so that both backends get the same values and a change of any of
 * them changes the inputs key.
 */
export async function readRepoVars(dirs: string[], env: Record<string, string | undefined> = process.env): Promise<Record<string, string>> {
  const vars: Record<string, string> = Object.create(null);
  for (const dir of dirs) {
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch {
      continue; // as dnf: a missing directory is no error
    }
    for (const name of names) {
      if (!VAR_NAME.test(name)) continue;
      const text = await readFile(join(dir, name), 'utf8').catch(() => undefined); // a directory, unreadable: skipped, as dnf does
      if (text === undefined) continue;
      const value = text.split('\n', 1)[0]!;
      checkVarValue(value, `${join(dir, name)}`);
      vars[name] = value;
    }
  }
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const name = /^DNF_VAR_([A-Za-z0-9_]+)$/.exec(key)?.[1] ?? (/^DNF[0-9]$/.test(key) ? key : undefined);
    if (!name) continue;
    checkVarValue(value, `the environment variable ${key}`);
    vars[name] = value;
  }
  return vars;
}

/** A value is substituted into .repo lines: a line break in it would add lines of its own. */
function checkVarValue(value: string, where: string): void {
  if (/[\r\n\0]/.test(value)) throw new UsageError(`repo variable from ${where} contains a line break`);
}

/** `$releasever_major` and `$releasever_minor`, which dnf before 4.18 does not set, unless given. */
export function releaseverVars(releasever: string, vars: Record<string, string>): Record<string, string> {
  const [major, ...rest] = releasever.split('.');
  return { releasever_major: major!, releasever_minor: rest.join('.'), ...vars };
}

/** `$name` and `${name}` replaced where `vars` knows the name; others are left as written. */
export function expandVars(text: string, vars: Record<string, string>): string {
  return text.replace(/\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare)!;
    return Object.hasOwn(vars, name) ? vars[name]! : whole;
  });
}

/**
 * dnf.conf's [main] options that change how files are fetched. They apply to every repo (a repo's own
 * value wins), as in dnf; nothing else of the host's dnf.conf is taken, so that the solve is the same
 * everywhere (Debian's turns skip_if_unavailable on, Fedora's sets installonly_limit and best).
 */
export const MAIN_TRANSFER_OPTIONS = new Set([
  'proxy', 'proxy_username', 'proxy_password', 'proxy_auth_method', 'proxy_sslverify', 'proxy_sslcacert',
  'proxy_sslclientcert', 'proxy_sslclientkey', 'sslverify', 'sslcacert', 'sslclientcert', 'sslclientkey',
  'username', 'password', 'timeout', 'minrate', 'retries', 'max_parallel_downloads', 'throttle', 'bandwidth',
  'ip_resolve', 'user_agent', 'fastestmirror',
]);

export const DEFAULT_DNF_CONF = '/etc/dnf/dnf.conf';

/** The transfer options of a dnf.conf's [main] section; none when the file does not exist. */
export async function readMainOptions(path: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
  const options: Record<string, string> = Object.create(null);
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.*)\]$/.exec(line);
    if (header) {
      section = header[1]!.trim();
      continue;
    }
    const eq = line.indexOf('=');
    if (section !== 'main' || eq <= 0) continue;
    const key = line.slice(0, eq).trim().toLowerCase();
    if (MAIN_TRANSFER_OPTIONS.has(key)) options[key] = line.slice(eq + 1).trim();
  }
  return options;
}

/** Values a repo definition holds that must never be printed or written: passwords and URL user-info. */
export function repoSecrets(repos: RepoDefinition[], vars: Record<string, string> = {}, main: Record<string, string> = {}): string[] {
  const secrets = new Set<string>();
  for (const options of [main, ...repos.map((r) => r.options)]) {
    for (const [key, written] of Object.entries(options)) {
      const value = expandVars(written, vars); // a variable may hold the credentials
      if ((key === 'password' || key === 'proxy_password') && value) secrets.add(value);
      // User-info runs to the last @ before the path: a password may hold an @ of its own.
      for (const match of value.matchAll(/[a-z][a-z0-9+.-]*:\/\/([^/?#\s]*)@/gi)) {
        const info = match[1]!;
        const colon = info.indexOf(':');
        secrets.add(colon >= 0 ? info.slice(colon + 1) : info);
        if (colon >= 0) secrets.add(info);
      }
    }
  }
  secrets.delete('');
  return [...secrets];
}
