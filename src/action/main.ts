// The GitHub Action entry point: action inputs → ComposeOptions; the result → outputs, annotations
// and a job summary. All behaviour lives in the engine.
import * as core from '@actions/core';
import { resolve } from 'node:path';
import { compose, defaultCacheDir, validateConfig, type ComposeResult, type Logger } from '../engine.js';
import { ComposeError, ConfigError, formatComposeProblem, UsageError } from '../errors.js';
import type { BaseSpec } from '../inputs/base.js';
import type { ExtensionsConfig } from '../inputs/extensions-yaml.js';
import { selectArches } from '../inputs/arch.js';
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

async function summarize(result: ComposeResult): Promise<void> {
  core.summary.addHeading('Extensions composed', 2);
  for (const a of result.arches) {
    core.summary.addHeading(`${a.arch}${a.changed ? '' : ' (unchanged)'}`, 3);
    const rows = Object.entries(a.extensions)
      .sort(([x], [y]) => x.localeCompare(y))
      .map(([name, count]) => [name, String(count)]);
    core.summary.addTable([
      [{ data: 'Extension', header: true }, { data: 'Packages', header: true }],
      ...rows,
      [{ data: '<b>all (repo)</b>' }, { data: `<b>${a.packageCount}</b>` }],
    ]);
    core.summary.addRaw(`State <code>${a.stateChecksum}</code>${a.changed ? ` · <code>${a.outputDir}</code>` : ''}`, true);
  }
  await core.summary.write();
}

/** Config problems as annotations on the file and line. */
function annotateConfig(err: ConfigError): void {
  for (const p of err.problems) {
    core.error(`${p.path ? `${p.path}: ` : ''}${p.message}`, { title: 'extensions.yaml', file: p.file, startLine: p.line, startColumn: p.col });
  }
}

/** Compose problems on the line of the extension they concern, when the config can be read. */
async function annotateCompose(err: ComposeError, configPath: string): Promise<void> {
  const config: ExtensionsConfig | undefined = await validateConfig(configPath).catch(() => undefined);
  for (const p of err.problems) {
    const ext = config?.extensions.find((e) => e.name === p.extension);
    core.error(formatComposeProblem(p), ext ? { title: 'compose', file: config!.file, startLine: ext.line, startColumn: ext.col } : { title: 'compose' });
  }
}

export async function run(): Promise<void> {
  const configPath = resolve(core.getInput('config') || 'extensions.yaml');
  try {
    const weak = core.getInput('weak-deps') || 'true';
    if (!/^(true|false)$/.test(weak)) throw new UsageError(`weak-deps must be true or false, got "${weak}"`);
    const base = baseInput();
    await ensureTools(
      [REQUIREMENTS.rpm, REQUIREMENTS.createrepo, REQUIREMENTS.dnf, ...(base.kind === 'ostree' ? [REQUIREMENTS.ostree] : [])],
      (m) => core.info(m),
    );
    const result = await compose({
      config: configPath,
      base,
      arches: selectArches(listInput('architectures'), 'architectures'),
      reposDir: core.getInput('repos-dir') || '/etc/yum.repos.d',
      repoPairs: listInput('repos'),
      releasever: core.getInput('releasever') || undefined,
      weakDeps: weak === 'true',
      cacheDir: resolve(core.getInput('cache-dir') || defaultCacheDir()),
      previousState: listInput('previous-state'),
      output: resolve(core.getInput('output') || 'extensions-output'),
      log: actionLogger,
    });
    core.setOutput('state-checksum', result.stateChecksum);
    core.setOutput('changed', String(result.changed));
    core.setOutput('output-dir', resolve(core.getInput('output') || 'extensions-output'));
    const metadata = Object.fromEntries(result.arches.map((a) => [a.arch, a.metadataPath]));
    core.setOutput('metadata', result.arches.length === 1 ? result.arches[0]!.metadataPath : JSON.stringify(metadata));
    await summarize(result);
  } catch (err) {
    if (err instanceof ConfigError) annotateConfig(err);
    else if (err instanceof ComposeError) await annotateCompose(err, configPath);
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}
