// The GitHub Action entry point: action inputs → ComposeOptions; the result → outputs, annotations
// and a job summary. All behaviour lives in the engine.
import * as core from '@actions/core';
import { resolve } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compose, defaultCacheDir, validateConfig, type ComposeOptions, type ComposeResult, type Logger } from '../engine.js';
import { ComposeError, ConfigError, formatComposeProblem, UsageError, type ComposeProblem } from '../errors.js';
import { loadPrevious } from '../inputs/previous.js';
import { buildReport, diffJson, renderMarkdown } from '../report/report.js';
import type { BaseSpec } from '../inputs/base.js';
import type { ExtensionsConfig } from '../inputs/extensions-yaml.js';
import { selectArches } from '../inputs/arch.js';
import { dnfPreference } from '../solve/dnf.js';
import { ensureTools, REQUIREMENTS } from '../tools/ensure.js';

/** A list input: one item per line or comma-separated; blank items and `#` comments ignored. */
export function listInput(name: string): string[] {
  return core
    .getInput(name)
    .split(/[\n,]/)
    .map((s) => s.replace(/#.*/, '').trim())
    .filter(Boolean);
}

function baseInput(): BaseSpec {
  const rootfs = core.getInput('rootfs');
  const repo = core.getInput('ostree-repo');
  const rev = core.getInput('base-rev');
  if (rootfs && (repo || rev)) throw new UsageError('set either rootfs or ostree-repo with base-rev, not both');
  if (rootfs) return { kind: 'rootfs', path: resolve(rootfs) };
  if (repo && rev) return { kind: 'ostree', repo: resolve(repo), ref: rev };
  throw new UsageError('a base is required: inputs ostree-repo and base-rev, or rootfs');
}

const actionLogger: Logger = {
  info: (m) => core.info(m),
  warn: (m) => core.warning(m),
  scope(name) {
    const lines: string[] = [];
    return {
      info: (m) => lines.push(m),
      warn: (m) => lines.push(`warning: ${m}`),
      end() {
        core.startGroup(`compose ${name}`);
        for (const line of lines) core.info(line);
        core.endGroup();
      },
    };
  },
};

/** Config problems as annotations on the file and line. */
function annotateConfig(err: ConfigError): void {
  for (const p of err.problems.slice(0, MAX_ANNOTATIONS)) {
    core.error(`${p.path ? `${p.path}: ` : ''}${p.message}`, { title: 'extensions.yaml', file: p.file, startLine: p.line, startColumn: p.col });
  }
  moreInSummary(err.problems.length);
}

/** GitHub shows at most 10 error annotations per step; the job summary lists every problem. */
const MAX_ANNOTATIONS = 10;

function moreInSummary(count: number): void {
  if (count > MAX_ANNOTATIONS) core.notice(`${count - MAX_ANNOTATIONS} more problems are listed in the job summary`);
}

/** Compose problems on the line of the extension they concern, when the config can be read. */
async function annotateCompose(problems: ComposeProblem[], configPath: string): Promise<void> {
  const config: ExtensionsConfig | undefined = await validateConfig(configPath).catch(() => undefined);
  for (const p of problems.slice(0, MAX_ANNOTATIONS)) {
    const ext = config?.extensions.find((e) => e.name === p.extension);
    core.error(formatComposeProblem(p), ext ? { title: 'compose', file: config!.file, startLine: ext.line, startColumn: ext.col } : { title: 'compose' });
  }
  moreInSummary(problems.length);
}

function booleanInput(name: string, fallback: boolean): boolean {
  const value = core.getInput(name) || String(fallback);
  if (!/^(true|false)$/.test(value)) throw new UsageError(`${name} must be true or false, got "${value}"`);
  return value === 'true';
}

export async function run(): Promise<void> {
  const configPath = resolve(core.getInput('config') || 'extensions.yaml');
  try {
    const mode = core.getInput('mode') || 'compose';
    if (mode !== 'compose' && mode !== 'validate') throw new UsageError(`mode must be compose or validate, got "${mode}"`);
    // The schema first: a broken file is reported alone, with every problem at its line.
    await validateConfig(configPath);
    const base = baseInput();
    await ensureTools(
      [REQUIREMENTS.rpm, REQUIREMENTS.dnf, ...(mode === 'compose' ? [REQUIREMENTS.createrepo] : []), ...(base.kind === 'ostree' ? [REQUIREMENTS.ostree] : [])],
      (m) => core.info(m),
    );
    const output = resolve(core.getInput('output') || 'extensions-output');
    const options: ComposeOptions = {
      config: configPath,
      base,
      arches: selectArches(listInput('architectures'), 'architectures'),
      reposDir: core.getInput('repos-dir') || '/etc/yum.repos.d',
      repoPairs: listInput('repos'),
      releasever: core.getInput('releasever') || undefined,
      weakDeps: booleanInput('weak-deps', true),
      cacheDir: resolve(core.getInput('cache-dir') || defaultCacheDir()),
      previousState: listInput('previous-state'),
      output: mode === 'compose' ? output : '',
      dnf: dnfPreference(core.getInput('dnf'), 'dnf'),
      mode: mode === 'compose' ? 'compose' : 'depsolve',
      strictCrossArch: booleanInput('strict-cross-arch', false),
      log: actionLogger,
    };
    const previousSource = core.getInput('previous-metadata');
    const previous = previousSource ? await loadPrevious(previousSource, options.arches) : undefined;
    let result: ComposeResult | undefined;
    let failures: ComposeProblem[] = [];
    try {
      result = await compose(options);
    } catch (err) {
      if (!(err instanceof ComposeError)) throw err;
      failures = err.problems;
    }
    const title = mode === 'compose' ? 'Extensions composed' : 'Extensions validated';
    const report = buildReport(title, result?.arches ?? [], { failures, previous, crossArchStrict: options.strictCrossArch });
    for (const m of report.crossArch.slice(0, MAX_ANNOTATIONS)) {
      if (!options.strictCrossArch) core.warning(`${m.extension}: ${m.package} differs across architectures`, { title: 'cross-architecture' });
    }
    if (previous) {
      const diff = JSON.stringify(diffJson(report));
      core.setOutput('diff', diff);
      if (result && mode === 'compose') await writeFile(join(output, 'diff.json'), diff + '\n');
    }
    if (result) {
      core.setOutput('state-checksum', result.stateChecksum);
      core.setOutput('changed', String(result.changed));
      if (mode === 'compose') {
        core.setOutput('output-dir', output);
        const metadata = Object.fromEntries(result.arches.map((a) => [a.arch, a.metadataPath]));
        core.setOutput('metadata', result.arches.length === 1 ? result.arches[0]!.metadataPath : JSON.stringify(metadata));
      }
    }
    await core.summary.addRaw(renderMarkdown(report), true).write();
    if (failures.length > 0) {
      await annotateCompose(failures, configPath);
      core.setFailed(`${failures.length} problem${failures.length === 1 ? '' : 's'}:\n${failures.map(formatComposeProblem).join('\n')}`);
    }
  } catch (err) {
    if (err instanceof ConfigError) annotateConfig(err);
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}
