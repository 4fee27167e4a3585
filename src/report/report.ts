// What a run tells people: per-architecture tables, package diffs, cross-architecture and pin checks,
// failures, timings. One model, rendered as Markdown (job summary) and as plain text (terminal).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { escapeControl, formatComposeProblem, type ComposeProblem } from '../errors.js';
import { byString } from '../metadata/state.js';
import { crossArchMismatches, versionsText, type ArchExtensions, type CrossArchMismatch } from './checks.js';
import { archDiffIsEmpty, diffArch, type ArchDiff, type Closures, type ExtensionDiff, type PackageChange } from './diff.js';

export interface ArchSummary extends ArchExtensions {
  stateChecksum: string;
  changed: boolean;
  packageCount: number;
  timings: Record<string, number>;
}

export interface Report {
  title: string;
  arches: ArchSummary[];
  failures: ComposeProblem[];
  /** Per architecture, when a previous result was given. */
  diffs: ArchDiff[];
  crossArch: CrossArchMismatch[];
  /** Whether cross-architecture differences fail the run (the engine has then already failed it). */
  crossArchStrict: boolean;
  /** Links or digests of what was published, as Markdown-safe lines. */
  published: string[];
}

export function buildReport(
  title: string,
  arches: ArchSummary[],
  options: { failures?: ComposeProblem[]; previous?: Map<string, Closures>; crossArchStrict?: boolean; published?: string[] } = {},
): Report {
  const diffs = options.previous
    ? arches.flatMap((a) => {
        const before = options.previous!.get(a.arch);
        return before ? [diffArch(a.arch, before, a)] : [];
      })
    : [];
  return {
    title,
    arches,
    failures: options.failures ?? [],
    diffs,
    crossArch: crossArchMismatches(arches),
    crossArchStrict: options.crossArchStrict ?? false,
    published: options.published ?? [],
  };
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function changeText(c: PackageChange): string {
  return c.from && c.to ? `${c.name}.${c.arch} ${c.from} → ${c.to}` : `${c.name}.${c.arch} ${c.to ?? c.from}`;
}

function changeCounts(d: ExtensionDiff | undefined): string {
  if (!d) return '';
  const parts = [
    d.added.length && `+${d.added.length}`,
    d.removed.length && `−${d.removed.length}`,
    d.upgraded.length && `↑${d.upgraded.length}`,
    d.downgraded.length && `↓${d.downgraded.length}`,
  ].filter(Boolean);
  return parts.join(' ');
}

const escape = (s: string) => s.replace(/[<>&|]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '|': '\\|' })[c]!);

/** GitHub rejects a job summary over 1 MiB; stay well under it. */
export const SUMMARY_LIMIT = 1024 * 1024 - 64 * 1024;

export function renderMarkdown(report: Report, limit = SUMMARY_LIMIT): string {
  const head: string[] = [`## ${escape(report.title)}`, ''];
  const failing = report.failures;
  if (failing.length > 0) {
    head.push(`### ❌ ${failing.length} problem${failing.length === 1 ? '' : 's'}`, '');
    for (const p of failing) head.push(`- ${escape(formatComposeProblem(p))}`);
    head.push('');
  }
  for (const a of report.arches) {
    const diff = report.diffs.find((d) => d.arch === a.arch);
    const state = a.stateChecksum ? ` · state \`${a.stateChecksum}\`` : '';
    head.push(`### ${a.arch}${a.changed ? '' : ' (unchanged)'}`, '', `${a.packageCount} packages${state}`, '');
    head.push(`| Extension | Kind | Packages | Download size |${diff ? ' Changes |' : ''}`);
    head.push(`| --- | --- | ---: | ---: |${diff ? ' --- |' : ''}`);
    for (const [name, e] of Object.entries(a.extensions).sort(([x], [y]) => byString(x, y))) {
      const changes = diff ? ` ${changeCounts(diff.extensions[name]) || '—'} |` : '';
      head.push(`| ${escape(name)} | ${e.kind} | ${e.packages.length} | ${mib(e.size)} |${changes}`);
    }
    const timings = Object.entries(a.timings).map(([stage, ms]) => `${stage} ${seconds(ms)}`).join(' · ');
    if (timings) head.push('', `Timings: ${timings}`);
    head.push('');
  }
  if (report.crossArch.length > 0) {
    head.push(`### Cross-architecture differences${report.crossArchStrict ? ' (errors)' : ''}`, '');
    const arches = report.arches.map((a) => a.arch);
    head.push(`| Extension | Package | ${arches.join(' | ')} |`, `| --- | --- |${arches.map(() => ' --- |').join('')}`);
    for (const m of report.crossArch) {
      head.push(`| ${escape(m.extension)} | ${escape(m.package)} | ${arches.map((a) => (m.versions[a] ?? ['—']).join(', ')).join(' | ')} |`);
    }
    head.push('');
  }
  if (report.published.length > 0) head.push('### Published', '', ...report.published.map((l) => `- ${l}`), '');

  // The diff details come last and are what gets folded or cut when the summary grows too large.
  const details: string[] = [];
  for (const d of report.diffs) {
    if (archDiffIsEmpty(d)) {
      details.push(`### Changes on ${d.arch}: none`, '');
      continue;
    }
    details.push(`### Changes on ${d.arch}`, '');
    for (const name of d.addedExtensions) details.push(`- new extension **${escape(name)}**`);
    for (const name of d.removedExtensions) details.push(`- removed extension **${escape(name)}**`);
    for (const [name, e] of Object.entries(d.extensions)) {
      const lines = [
        ...e.added.map((c) => `+ ${changeText(c)}`),
        ...e.removed.map((c) => `- ${changeText(c)}`),
        ...e.upgraded.map((c) => `↑ ${changeText(c)}`),
        ...e.downgraded.map((c) => `↓ ${changeText(c)}`),
      ];
      details.push(`<details><summary>${escape(name)}: ${changeCounts(e)}</summary>`, '', '```', ...lines, '```', '', '</details>', '');
    }
  }
  // Every line escaped on its own: a name holding a newline cannot start a line of its own.
  const text = [...head, ...details].map(escapeControl).join('\n');
  if (Buffer.byteLength(text) <= limit) return text;
  const note = '\n_Package-level changes left out: the summary would exceed GitHub’s size limit. The full diff is in the `diff` output and diff.json._\n';
  const cut = head.map(escapeControl).join('\n');
  return Buffer.byteLength(cut) + note.length <= limit ? cut + note : cut.slice(0, limit - note.length) + note;
}

/** The terminal report; failures are left to the caller, which prints them on stderr. */
export function renderText(report: Report): string {
  const out: string[] = [];
  for (const a of report.arches) {
    out.push(`${a.arch}: ${a.packageCount} packages${a.changed ? '' : ' (unchanged)'}${a.stateChecksum ? `, state ${a.stateChecksum}` : ''}`);
    const diff = report.diffs.find((d) => d.arch === a.arch);
    for (const [name, e] of Object.entries(a.extensions).sort(([x], [y]) => byString(x, y))) {
      const changes = diff ? changeCounts(diff.extensions[name]) : '';
      out.push(`  ${name.padEnd(24)} ${e.kind.padEnd(12)} ${String(e.packages.length).padStart(5)} packages ${mib(e.size).padStart(10)}${changes ? `  ${changes}` : ''}`);
    }
  }
  for (const d of report.diffs) {
    for (const [name, e] of Object.entries(d.extensions)) {
      out.push(`changes in ${name} on ${d.arch}:`);
      for (const c of e.added) out.push(`  + ${changeText(c)}`);
      for (const c of e.removed) out.push(`  - ${changeText(c)}`);
      for (const c of e.upgraded) out.push(`  ↑ ${changeText(c)}`);
      for (const c of e.downgraded) out.push(`  ↓ ${changeText(c)}`);
    }
  }
  for (const m of report.crossArch) {
    out.push(`${report.crossArchStrict ? 'error' : 'warning'}: ${m.extension}: ${m.package} differs across architectures: ${versionsText(m.versions)}`);
  }
  return out.map(escapeControl).join('\n');
}

/** `<output>/diff.json`; the output directory may not exist yet when every architecture was unchanged. */
export async function writeDiff(output: string, json: string): Promise<void> {
  await mkdir(output, { recursive: true });
  await writeFile(join(output, 'diff.json'), json + '\n');
}

/** The diff as JSON for the `diff` output and diff.json. */
export function diffJson(report: Report) {
  return { arches: report.diffs, crossArch: report.crossArch };
}
