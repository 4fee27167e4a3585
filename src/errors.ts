/** A problem in a configuration file, located at file:line:col and a key path. */
export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  /** Key path such as `extensions.kernel-rt.architectures[0]`; empty for the document itself. */
  path: string;
  message: string;
}

// C0 controls, DEL, C1 controls and the Unicode line/paragraph separators.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Text from a config, the command line or a server, made safe to print: control characters are
 * escaped JSON-style (`\u001b`, `\n`), so that a name can neither forge a line of output nor send
 * escape sequences to a terminal or a CI log. Used wherever such text leaves the program.
 */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** {@link escapeControl} for text whose own line breaks are its structure (a multi-line message). */
export function escapeLines(text: string): string {
  return text.split('\n').map(escapeControl).join('\n');
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.path ? ` ${p.path}:` : '';
  return escapeControl(`${p.file}:${p.line}:${p.col}:${where} ${p.message}`);
}

/** Bad command-line usage or inputs; exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  /** One line per problem: each printed on a line of its own, its own text escaped. */
  readonly lines: string[];
  constructor(message: string | string[]) {
    const lines = Array.isArray(message) ? message : [message];
    super(lines.join('\n'));
    this.lines = lines;
  }
}

/** An invalid extensions.yaml (or repo file); carries every problem found, exit code 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: ConfigProblem[]) {
    super(
      `${problems.length} problem${problems.length === 1 ? '' : 's'} in configuration:\n` +
        problems.map((p) => `  ${formatProblem(p)}`).join('\n'),
    );
  }
}

/** One reason an architecture could not be composed. */
export interface ComposeProblem {
  arch?: string;
  extension?: string;
  message: string;
  /** Where the extension stands in the config (locateProblems), as for a config problem. */
  file?: string;
  line?: number;
  col?: number;
}

/** Composing failed (resolution, download, verification); exit code 1. */
export class ComposeError extends Error {
  override name = 'ComposeError';
  constructor(readonly problems: ComposeProblem[]) {
    super(problems.map((p) => formatComposeProblem(p)).join('\n'));
  }
}

/**
 * `extensions.yaml:12:3: usbguard on aarch64: nothing provides libqb.so.100 needed by usbguard-1.1.3-1.aarch64`;
 * `where: false` leaves the location out (an annotation carries it apart).
 */
export function formatComposeProblem(p: ComposeProblem, { where = true }: { where?: boolean } = {}): string {
  const scope = p.extension ? `${p.extension}${p.arch ? ` on ${p.arch}` : ''}` : p.arch;
  const location = where && p.file ? `${p.file}:${p.line}:${p.col}: ` : '';
  return escapeControl(`${location}${scope ? `${scope}: ${p.message}` : p.message}`);
}

/** An external tool failed or is missing; the message names the command that fixes it. */
export class ToolError extends Error {
  override name = 'ToolError';
}

export function exitCodeFor(err: unknown): number {
  return err instanceof UsageError || err instanceof ConfigError ? 2 : 1;
}
