// Parse and validate rpm-ostree's extensions.yaml, reporting every problem with its position.
//
// rpm-ostree (rust/src/extensions.rs) deserializes with serde: unknown keys are ignored and a
// duplicated extension silently replaces the first. We are stricter so that a typo is caught
// here rather than turning into a missing package on one architecture.
import { open } from 'node:fs/promises';
import { Composer, isAlias, isMap, isScalar, isSeq, Lexer, LineCounter, Parser, type CST, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import * as z from 'zod';
import { ConfigError, type ComposeProblem, type ConfigProblem } from '../errors.js';

export type ExtensionKind = 'os-extension' | 'development';

export interface Extension {
  name: string;
  kind: ExtensionKind;
  /** Package specs as written. */
  packages: string[];
  /** RPM basearches the extension applies to; undefined means all. */
  architectures?: string[];
  /** Name of a base package whose epoch:version-release every package of the extension is pinned to. */
  matchBaseEvr?: string;
  /** Package whose EVR versions the extension's system extension image (default: its first package). */
  versionPackage?: string;
  /** Repo ids enabled only where this extension applies. */
  repos: string[];
  /** 1-based position of the extension's key in the file, for annotations. */
  line: number;
  col: number;
}

export interface ExtensionsConfig {
  file: string;
  /** Repo ids enabled for every extension. */
  repos: string[];
  /** In file order. */
  extensions: Extension[];
  /** Position of every list entry by key path (`repos[0]`, `extensions.foo.packages[2]`); no prototype. */
  locations: Record<string, { line: number; col: number }>;
}

/** Real files are a few KB; the cap keeps a hostile or mistaken input from exhausting memory and time. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/** extensions.yaml needs 5 levels (top map, `extensions`, an extension, `packages`, a name). */
export const MAX_DEPTH = 32;
/** `yaml` resolves each alias by scanning every anchor and alias before it: bounded (each), that stays cheap. */
export const MAX_ALIASES = 1000;

export const KNOWN_ARCHITECTURES = ['x86_64', 'aarch64', 'ppc64le', 's390x', 'riscv64'] as const;
const KINDS = ['os-extension', 'development'] as const;
const TOP_KEYS = ['extensions', 'repos'];
const EXTENSION_KEYS = ['packages', 'kind', 'architectures', 'match-base-evr', 'version-package', 'repos'];
// rpm-ostree still had `modules` when the historical RHCOS files were written; say why it is gone.
const MODULES_REMOVED =
  '`modules` is not supported: rpm-ostree removed modularity support in 2024; ' +
  'list the packages in `packages` and enable non-modular repos that provide them instead';
// Characters of an RPM name; anything else (spaces, `>=`, `:`) means a version spec slipped in.
const PACKAGE_NAME = /^[A-Za-z0-9._+-]+$/;
/** The characters dnf treats as a glob in a package spec. */
const GLOB = /[*?[]/;

type Path = (string | number)[];
type Report = (offset: number, path: Path, message: string) => void;

const describeValue = (v: unknown): string =>
  v == null ? 'an empty value'
  : Array.isArray(v) ? 'a list'
  : typeof v === 'object' ? 'a map'
  : typeof v === 'string' ? `the string ${JSON.stringify(v)}`
  : `${typeof v} ${String(v)} (quote it to make it a string)`;

const text = (what: string) =>
  z
    .string({ error: (iss) => `${what} must be a string, not ${describeValue(iss.input)}` })
    .refine((s) => s.trim() !== '', `${what} must not be empty`);

/**
 * A list whose entries must be unique; `key` names the YAML key, `what` one entry.
 * With `empty` (the message), the list must not be empty nor null.
 */
const list = <T extends z.ZodType<string>>(item: T, key: string, what: string, empty?: string) =>
  z
    .array(item, {
      error: (iss) =>
        iss.input === undefined ? `missing required key \`${key}\``
        : iss.input === null && empty ? empty
        : `\`${key}\` must be a list of ${what}s, not ${describeValue(iss.input)}`,
    })
    .min(empty ? 1 : 0, empty)
    // Duplicates are reported even when another entry is invalid, hence `when`.
    .superRefine(
      (entries, ctx) => {
        const seen = new Map<unknown, number>();
        entries.forEach((v, i) => {
          if (typeof v !== 'string') return;
          const message = `${what} ${JSON.stringify(v)} is listed twice`;
          if (seen.has(v)) ctx.addIssue({ code: 'custom', path: [i], message, params: { first: seen.get(v) } });
          else seen.set(v, i);
        });
      },
      { when: (payload) => Array.isArray(payload.value) },
    );

const architecture = z.enum(KNOWN_ARCHITECTURES, {
  error: (iss) =>
    typeof iss.input === 'string'
      ? `unknown architecture ${JSON.stringify(iss.input)}; known: ${KNOWN_ARCHITECTURES.join(', ')}`
      : `architecture must be a string, not ${describeValue(iss.input)}`,
});

const extensionSchema = z.strictObject(
  {
    packages: list(text('package'), 'packages', 'package', '`packages` is empty; list at least one package'),
    kind: z
      .enum(KINDS, { error: (iss) => `unknown kind ${JSON.stringify(iss.input)}; valid kinds: ${KINDS.join(', ')}` })
      .default('os-extension'),
    // An empty list would silently disable the extension everywhere (rpm-ostree: applies to no arch).
    architectures: list(
      architecture, 'architectures', 'architecture',
      '`architectures` is empty; remove the key to apply the extension to all architectures',
    ).optional(),
    'match-base-evr': text('`match-base-evr`')
      .refine((s) => s.trim() === '' || PACKAGE_NAME.test(s), {
        error: (iss) =>
          `\`match-base-evr\` must be a plain package name such as "kernel" (no spaces, versions or operators), not ${JSON.stringify(iss.input)}`,
      })
      .optional(),
    // Ours, not rpm-ostree's (which ignores unknown keys): names the image version of a sysext.
    'version-package': text('`version-package`')
      .refine((s) => s.trim() === '' || PACKAGE_NAME.test(s), {
        error: (iss) => `\`version-package\` must be a plain package name such as "usbguard" (no spaces, versions or operators), not ${JSON.stringify(iss.input)}`,
      })
      .optional(),
    // Null is allowed like in rpm-ostree: it is what a list with every entry commented out parses to.
    repos: list(text('repo id'), 'repos', 'repo id').nullish(),
  },
  { error: (iss) => `an extension must be a map with at least \`packages\`, not ${describeValue(iss.input)}` },
).superRefine((e, ctx) => {
  // A development extension is downloaded, not depsolved: a glob would pick one arbitrary match.
  // os-extension specs go to dnf like rpm-ostree's, where a glob is dnf's to expand.
  if (e.kind !== 'development') return;
  e.packages.forEach((p, i) => {
    if (GLOB.test(p))
      ctx.addIssue({ code: 'custom', path: ['packages', i], message: `package ${JSON.stringify(p)} is a glob; development extensions take exact package names or NEVRAs: list the packages` });
  });
});

const configSchema = z.strictObject(
  {
    // Each extension is validated on its own (`extensionSchema`), so that a name such as `__proto__`
    // never becomes a property of an object zod builds.
    extensions: z
      .record(z.string(), z.unknown(), {
        error: (iss) =>
          iss.input === undefined ? 'missing required key `extensions`'
          : `\`extensions\` must be a map of extension names to extensions, not ${describeValue(iss.input)}`,
      }),
    repos: list(text('repo id'), 'repos', 'repo id').nullish(),
  },
  { error: (iss) => `the top level must be a map with \`extensions\` (and optionally \`repos\`), not ${describeValue(iss.input)}` },
);

const formatPath = (path: Path): string =>
  path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');

/** Levenshtein distance, to suggest the key that was probably meant. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The candidate closest to `key`, if close enough to be a typo (`arch` and `matchBaseEvr` count). */
function suggest(key: string, candidates: readonly string[]): string | undefined {
  const k = key.toLowerCase().replace(/_/g, '-');
  let best: { c: string; d: number } | undefined;
  for (const c of candidates) {
    const d = k.length >= 4 && c.startsWith(k) ? 1 : Math.min(distance(k, c), distance(k, c.replace(/-/g, '')));
    if (d <= Math.max(2, Math.floor(key.length / 3)) && (!best || d < best.d)) best = { c, d };
  }
  return best?.c;
}

const keyName = (key: unknown): string | undefined =>
  isScalar(key) && key.value != null && String(key.value).trim() !== '' ? String(key.value) : undefined;

/**
 * Report (and drop, so later checks see a consistent tree) duplicate and unusable map keys.
 * `yaml` would stop at the first duplicate; we parse with `uniqueKeys: false` and do it here.
 */
function checkKeys(node: unknown, path: Path, lines: LineCounter, report: Report) {
  if (isSeq(node)) node.items.forEach((item, i) => checkKeys(item, [...path, i], lines, report));
  if (!isMap(node)) return;
  const isExtensions = path.length === 1 && path[0] === 'extensions';
  const seen = new Map<string, number>(); // name -> line
  node.items = node.items.filter((pair) => {
    const keyNode = pair.key as Node | null;
    const offset = keyNode?.range?.[0] ?? (pair.value as Node | null)?.range?.[0] ?? 0;
    const name = keyName(keyNode);
    if (name === undefined) {
      const what = isExtensions ? 'extension name' : 'key';
      const bad = isScalar(keyNode) || !keyNode ? 'must not be empty' : `must be a string, not ${isSeq(keyNode) ? 'a list' : 'a map'}`;
      report(offset, path, `${what} ${bad}`);
      return false;
    }
    const first = seen.get(name);
    if (first !== undefined) {
      report(offset, [...path, name], `duplicate ${isExtensions ? 'extension' : 'key'} \`${name}\`; first defined at line ${first}`);
      return false;
    }
    seen.set(name, lines.linePos(offset).line);
    checkKeys(pair.value, [...path, name], lines, report);
    return true;
  });
}

/** The pairs of a map by key name, built once per map: looking a key up must not scan the map. */
const pairIndex = new WeakMap<YAMLMap, Map<string, Pair>>();
function pairOf(map: YAMLMap, name: string): Pair | undefined {
  let index = pairIndex.get(map);
  if (!index) {
    index = new Map();
    for (const p of map.items) {
      const k = keyName(p.key);
      if (k !== undefined && !index.has(k)) index.set(k, p as Pair);
    }
    pairIndex.set(map, index);
  }
  return index.get(name);
}

/** The node at `path` (its key too when it is a map value), or the deepest existing ancestor. */
function locate(doc: Document, path: PropertyKey[]): { node?: Node; key?: Node; found: boolean } {
  let node = doc.contents as Node | null | undefined;
  let key: Node | undefined;
  for (const seg of path) {
    // The context caches the list of anchors, which `resolve` would otherwise rebuild on every call.
    if (isAlias(node)) node = node.resolve(doc, aliasContext(doc) as never);
    const pair = isMap(node) ? pairOf(node, String(seg)) : undefined;
    if (pair) [key, node] = [pair.key as Node, pair.value as Node];
    else if (isSeq(node) && typeof seg === 'number' && node.items[seg]) [key, node] = [undefined, node.items[seg] as Node];
    else return { node: node ?? undefined, key, found: false };
  }
  return { node: node ?? undefined, key, found: true };
}

const aliasContexts = new WeakMap<Document, object>();
const aliasContext = (doc: Document) => aliasContexts.get(doc) ?? aliasContexts.set(doc, {}).get(doc)!;

/**
 * The offset and message of the first thing that makes the token tree too costly to compose:
 * nesting deeper than MAX_DEPTH (composing recurses) or more than MAX_ALIASES aliases.
 * Iterative, one pass over the tokens.
 */
function checkTokens(tokens: CST.Token[]): { offset: number; message: string } | undefined {
  const stack: [CST.Token, number][] = tokens.map((t) => [t, 0] as [CST.Token, number]).reverse();
  let aliases = 0;
  let anchors = 0;
  // Anchors are scanned for every alias too: bounded like aliases.
  const anchor = (props: CST.SourceToken[] | undefined) => {
    for (const t of props ?? [])
      if (t.type === 'anchor' && ++anchors > MAX_ALIASES)
        return { offset: t.offset, message: `more than ${MAX_ALIASES} YAML anchors; write the values out instead` };
    return undefined;
  };
  while (stack.length > 0) {
    const [token, depth] = stack.pop()!;
    if (token.type === 'alias' && ++aliases > MAX_ALIASES)
      return { offset: token.offset, message: `more than ${MAX_ALIASES} YAML aliases; write the values out instead` };
    if (token.type === 'document') {
      const tooMany = anchor(token.start);
      if (tooMany) return tooMany;
      if (token.value) stack.push([token.value, depth]);
    }
    if (token.type !== 'block-map' && token.type !== 'block-seq' && token.type !== 'flow-collection') continue;
    if (depth + 1 > MAX_DEPTH)
      return { offset: token.offset, message: `nested more than ${MAX_DEPTH} levels deep; extensions.yaml needs 5` };
    // Reversed, so that the first problem in file order is the one found.
    for (const item of token.items as CST.CollectionItem[]) {
      const tooMany = anchor(item.start) ?? anchor(item.sep);
      if (tooMany) return tooMany;
    }
    for (let i = token.items.length - 1; i >= 0; i--) {
      const item = token.items[i] as CST.CollectionItem;
      if (item.value) stack.push([item.value, depth + 1]);
      if (item.key) stack.push([item.key, depth + 1]);
    }
  }
  return undefined;
}

/** Where to point for a problem at `path`: the value, or its key when the value is missing or empty. */
function offsetOf(doc: Document, path: PropertyKey[]): number {
  const { node, key, found } = locate(doc, path);
  const empty = !node || (isScalar(node) && node.source === '' && node.value == null);
  return (found && !empty ? node?.range?.[0] : (key ?? node)?.range?.[0]) ?? 0;
}

/**
 * The offset of the first flow collection (`[`, `{`) nested deeper than MAX_DEPTH, from the lexer's
 * tokens: the parser is slow on deep flow nesting (seconds per MB), the lexer is not.
 */
function deepFlowOffset(text: string): number | undefined {
  let offset = 0;
  let depth = 0;
  for (const token of new Lexer().lex(text)) {
    if (token === '[' || token === '{') {
      if (++depth > MAX_DEPTH) return offset;
    } else if ((token === ']' || token === '}') && depth > 0) depth--;
    // Control tokens (document and scalar markers) stand for no source text.
    if (token.length > 1 || token.charCodeAt(0) >= 0x20 || token === '\t' || token === '\n' || token === '\r') offset += token.length;
  }
  return undefined;
}

/** The first alias in the document, where an alias bomb is reported (`yaml` does not say which alias). */
function firstAlias(node: unknown): Node | undefined {
  const stack = [node];
  while (stack.length > 0) {
    const n = stack.pop();
    if (isAlias(n)) return n;
    if (isMap(n)) for (let i = n.items.length - 1; i >= 0; i--) stack.push(n.items[i].value, n.items[i].key);
    else if (isSeq(n)) for (let i = n.items.length - 1; i >= 0; i--) stack.push(n.items[i]);
  }
  return undefined;
}

export function parseExtensionsYaml(text: string, file: string): ExtensionsConfig {
  const lines = new LineCounter();
  const problems: ConfigProblem[] = [];
  const report: Report = (offset, path, message) =>
    problems.push({ file, ...lines.linePos(offset), path: formatPath(path), message });
  const fail = (keep = (_: ConfigProblem) => true) =>
    new ConfigError(problems.filter(keep).sort((a, b) => a.line - b.line || a.col - b.col));

  const size = Buffer.byteLength(text, 'utf8');
  if (size > MAX_CONFIG_BYTES) {
    problems.push({ file, line: 1, col: 1, path: '', message: TOO_LARGE });
    throw fail();
  }
  const deepFlow = deepFlowOffset(text);
  if (deepFlow !== undefined) {
    // Before parsing, the line counter knows no lines yet: count them here.
    const line = text.slice(0, deepFlow).split('\n').length;
    const col = deepFlow - text.lastIndexOf('\n', deepFlow - 1);
    problems.push({ file, line, col, path: '', message: `nested more than ${MAX_DEPTH} levels deep; extensions.yaml needs 5` });
    throw fail();
  }
  // parseDocument's steps, so that the token tree is checked before composing recurses into it.
  const tokens = [...new Parser(lines.addNewLine).parse(text)];
  const costly = checkTokens(tokens);
  if (costly) {
    report(costly.offset, [], costly.message);
    throw fail();
  }
  const [doc, second] = new Composer({ uniqueKeys: false }).compose(tokens, true, text.length);

  // Syntax errors leave a partial tree; validating it would only add confusing follow-up errors.
  for (const e of doc.errors) report(e.pos[0], [], `YAML syntax error: ${e.message}`);
  // rpm-ostree reads a single document; a second one is a mistake, not a continuation.
  if (second) report(second.range[0], [], 'a second YAML document: extensions.yaml holds one document; remove this `---` and what follows, or merge it into the first');
  if (problems.length) throw fail();
  if (doc.contents == null) {
    report(0, [], 'empty document; expected a map with an `extensions` key');
    throw fail();
  }

  checkKeys(doc.contents, [], lines, report);

  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    // `yaml` refuses aliases that expand too much (maxAliasCount) and unresolvable ones.
    const message = /Excessive alias count/.test((err as Error).message)
      ? 'YAML aliases expand too much (a "billion laughs" alias bomb?); write the values out instead'
      : `YAML alias error: ${(err as Error).message}`;
    report(firstAlias(doc.contents)?.range?.[0] ?? 0, [], message);
    throw fail();
  }
  const top = configSchema.safeParse(raw);
  const issues = [...(top.error?.issues ?? [])];
  const found = locate(doc, ['extensions']);
  const extensionsNode = !found.found ? undefined : isAlias(found.node) ? found.node.resolve(doc, aliasContext(doc) as never) : found.node;
  const names = isMap(extensionsNode) ? extensionsNode.items.map((p) => keyName(p.key)!) : [];
  if (isMap(extensionsNode) && names.length === 0) report(offsetOf(doc, ['extensions']), ['extensions'], '`extensions` defines no extension');
  const rawExtensions = names.length > 0 ? (raw as { extensions: object }).extensions : {};
  const parsed = new Map<string, z.infer<typeof extensionSchema>>();
  for (const name of names) {
    // Own properties only: yaml defines `__proto__` as an own property, never as the prototype.
    const result = extensionSchema.safeParse(Object.getOwnPropertyDescriptor(rawExtensions, name)?.value);
    if (result.success) parsed.set(name, result.data);
    else for (const issue of result.error.issues) issues.push({ ...issue, path: ['extensions', name, ...issue.path] });
  }

  const suggested = new Set<string>(); // `packages` missing because `package` was written: say it once
  for (const issue of issues) {
    const path = issue.path as Path;
    if (issue.code === 'unrecognized_keys') {
      const known = path.length === 0 ? TOP_KEYS : EXTENSION_KEYS;
      for (const key of issue.keys) {
        const hint = suggest(key, known);
        if (hint) suggested.add(formatPath([...path, hint]));
        const message =
          key === 'modules' ? MODULES_REMOVED
          : `unknown key \`${key}\`` + (hint ? ` (did you mean \`${hint}\`?)` : `; valid keys: ${known.join(', ')}`);
        report(locate(doc, [...path, key]).key?.range?.[0] ?? 0, [...path, key], message);
      }
    } else {
      const first = issue.code === 'custom' ? (issue.params?.first as number | undefined) : undefined;
      const firstLine = first !== undefined && lines.linePos(offsetOf(doc, [...path.slice(0, -1), first])).line;
      report(offsetOf(doc, path), path, issue.message + (firstLine ? `; first listed at line ${firstLine}` : ''));
    }
  }
  if (problems.length || !top.success || parsed.size !== names.length)
    throw fail((p) => !(suggested.has(p.path) && p.message.startsWith('missing required key')));

  const data = top.data;
  // Where each list entry stands, for problems found later (an unknown repo, a package dnf cannot resolve).
  const locations: Record<string, { line: number; col: number }> = Object.create(null);
  const listPaths: Path[] = [['repos'], ...names.flatMap((n) => [['extensions', n, 'repos'], ['extensions', n, 'packages']] as Path[])];
  for (const path of listPaths) {
    const list = locate(doc, path).node;
    if (!isSeq(list)) continue;
    list.items.forEach((_, i) => (locations[formatPath([...path, i])] = lines.linePos(offsetOf(doc, [...path, i]))));
  }
  return {
    file,
    repos: data.repos ?? [],
    locations,
    extensions: names.map((name) => {
      const e = parsed.get(name)!;
      return {
        name,
        kind: e.kind,
        packages: e.packages,
        architectures: e.architectures,
        matchBaseEvr: e['match-base-evr'],
        ...(e['version-package'] !== undefined && { versionPackage: e['version-package'] }),
        repos: e.repos ?? [],
        ...lines.linePos(locate(doc, ['extensions', name]).key?.range?.[0] ?? 0),
      };
    }),
  };
}

const TOO_LARGE = `the file is larger than ${MAX_CONFIG_BYTES / 1024 / 1024} MiB (${MAX_CONFIG_BYTES} bytes), the limit for extensions.yaml`;

export async function readExtensionsYaml(path: string): Promise<ExtensionsConfig> {
  const cannot = (why: string) =>
    new ConfigError([{ file: path, line: 1, col: 1, path: '', message: `cannot read extensions file: ${why}` }]);
  let text: string;
  try {
    // Read at most one byte past the limit: a huge file (or /dev/zero) is refused without reading it all.
    const handle = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
      let length = 0;
      for (let n = -1; n !== 0 && length < buffer.length; length += n)
        ({ bytesRead: n } = await handle.read(buffer, length, buffer.length - length, null));
      if (length > MAX_CONFIG_BYTES)
        throw new ConfigError([{ file: path, line: 1, col: 1, path: '', message: TOO_LARGE }]);
      text = buffer.toString('utf8', 0, length);
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw cannot(e.code === 'ENOENT' ? 'file not found' : e.code === 'EISDIR' ? 'is a directory, not a file' : e.message);
  }
  return parseExtensionsYaml(text, path);
}

/** Each problem about an extension of `config`, with where that extension stands in the file. */
export function locateProblems(problems: readonly ComposeProblem[], config: ExtensionsConfig | undefined): ComposeProblem[] {
  const byName = new Map(config?.extensions.map((e) => [e.name, e]));
  return problems.map((p) => {
    const ext = p.extension === undefined ? undefined : byName.get(p.extension);
    return ext && !p.file ? { ...p, file: config!.file, line: ext.line, col: ext.col } : p;
  });
}
