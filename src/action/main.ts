// The GitHub Action entry point: action inputs → ComposeOptions; the result → outputs, annotations
// and a job summary. All behaviour lives in the engine.
import * as core from '@actions/core';
import { resolve } from 'node:path';
import { compose, defaultCacheDir, locateFailures, validateConfig, type ComposeOptions, type ComposeResult, type Logger } from '../engine.js';
import { ComposeError, ConfigError, escapeControl, escapeLines, formatComposeProblem, UsageError, type ComposeProblem } from '../errors.js';
import { loadPrevious } from '../inputs/previous.js';
import { buildReport, diffJson, renderMarkdown, writeDiff } from '../report/report.js';
import type { BaseSpec } from '../base/types.js';
import { selectArches } from '../inputs/arch.js';
import { dnfPreference } from '../solve/dnf.js';
import { sbomChoice } from '../metadata/sbom.js';
import { parseRetentionDays } from '../publish/artifact.js';
import { AUTH_DIR_STATE } from './cleanup.js';
import { selectBase, withBaseRegistry } from '../base/base-spec.js';
import { secretsToMask } from '../tools/registry-auth.js';
import { checkSigning, parseLabels, parseUpload, publishComposed, publishMerge, type PublishInputs, type PublishResult } from '../publish/publish.js';
import { ensureTools, REQUIREMENTS } from '../tools/ensure.js';
import { SIGN_PREDICATE, sigstoreURL, type SigningInputs } from '../publish/signing.js';
import { parseSysext } from '../sysext/options.js';
import { attestImages, attestIndex, checkAttest, type Provenance } from '../publish/provenance.js';

/** A list input: one item per line or comma-separated; blank items and `#` comments ignored. */
export function listInput(name: string): string[] {
  return core
    .getInput(name)
    .split(/[\n,]/)
    .map((s) => s.replace(/#.*/, '').trim())
    .filter(Boolean);
}

function baseInput(): BaseSpec {
  const input = (name: string) => core.getInput(name) || undefined;
  return selectBase(
    { ostreeRepo: input('ostree-repo'), baseRev: input('base-rev'), rootfs: input('rootfs'), baseImage: input('base-image'), baseSha256: input('base-sha256') },
    (field) => field,
  );
}

// A config value with a newline must not start a log line of its own (a `::` workflow command).
const actionLogger: Logger = {
  info: (m) => core.info(escapeLines(m)),
  warn: (m) => core.warning(escapeLines(m)),
  // Repo passwords and URL user-info: masked in the log should anything ever print them.
  secret: (value) => core.setSecret(value),
  // Architectures run concurrently and groups cannot interleave: lines are kept per stage and shown
  // as one group per architecture and stage when the architecture is done.
  scope(name) {
    const stages: { stage: string; lines: string[] }[] = [{ stage: 'setup', lines: [] }];
    const add = (line: string) => stages[stages.length - 1]!.lines.push(line);
    return {
      stage: (stage) => void stages.push({ stage, lines: [] }),
      info: add,
      warn: (m) => add(`warning: ${m}`),
      end() {
        for (const { stage, lines } of stages.filter((s) => s.lines.length > 0)) {
          core.startGroup(`${name}: ${stage}`);
          for (const line of lines) core.info(escapeLines(line));
          core.endGroup();
        }
      },
    };
  },
};

/** Config problems as annotations on the file and line. */
function annotateConfig(err: ConfigError): void {
  for (const p of err.problems.slice(0, MAX_ANNOTATIONS)) {
    core.error(escapeControl(`${p.path ? `${p.path}: ` : ''}${p.message}`), { title: 'extensions.yaml', file: escapeControl(p.file), startLine: p.line, startColumn: p.col });
  }
  moreInSummary(err.problems.length);
}

/** GitHub shows at most 10 error annotations per step; the job summary lists every problem. */
const MAX_ANNOTATIONS = 10;

function moreInSummary(count: number): void {
  if (count > MAX_ANNOTATIONS) core.notice(`${count - MAX_ANNOTATIONS} more problems are listed in the job summary`);
}

/** Compose problems on the line of the extension they concern (located by `locate`). */
function annotateCompose(problems: ComposeProblem[]): void {
  for (const p of problems.slice(0, MAX_ANNOTATIONS)) {
    core.error(
      formatComposeProblem(p, { where: false }),
      p.file ? { title: 'compose', file: escapeControl(p.file), startLine: p.line, startColumn: p.col } : { title: 'compose' },
    );
  }
  moreInSummary(problems.length);
}

function booleanInput(name: string, fallback: boolean): boolean {
  const value = core.getInput(name) || String(fallback);
  if (!/^(true|false)$/.test(value)) throw new UsageError(`${name} must be true or false, got "${value}"`);
  return value === 'true';
}

/**
 * sign / sign-key and the sigstore URLs. Keyless needs the job's OIDC token: its request variables
 * exist only with `permissions: id-token: write`. The key's password is masked at once.
 */
export function signingInput(env: NodeJS.ProcessEnv = process.env): SigningInputs | undefined {
  const keyless = booleanInput('sign', false);
  const keyFile = core.getInput('sign-key');
  if (keyless && keyFile) throw new UsageError('use sign: true (keyless) or sign-key, not both');
  if (keyFile) {
    const password = env['SIGN_KEY_PASSWORD'] || undefined;
    if (password) core.setSecret(password);
    return { keyFile: resolve(keyFile), keyPassword: password };
  }
  if (!keyless) return undefined;
  if (!env['ACTIONS_ID_TOKEN_REQUEST_URL'] || !env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']) {
    throw new UsageError('sign: true needs the workflow\'s OIDC token: give the job `permissions: id-token: write` (or use sign-key)');
  }
  return {
    identityToken: () => core.getIDToken('sigstore'),
    fulcioURL: sigstoreURL('sigstore-fulcio-url', core.getInput('sigstore-fulcio-url')),
    rekorURL: sigstoreURL('sigstore-rekor-url', core.getInput('sigstore-rekor-url')),
    tsaURL: sigstoreURL('sigstore-tsa-url', core.getInput('sigstore-tsa-url'), true),
  };
}

/** The publishing inputs; the password is masked before anything else runs. */
function publishInputs(): PublishInputs {
  const password = core.getInput('registry-password');
  if (password) core.setSecret(password);
  const signing = signingInput();
  const retention = core.getInput('retention-days');
  return {
    upload: parseUpload(core.getInput('upload')),
    artifactName: core.getInput('artifact-name') || undefined,
    retentionDays: retention ? parseRetentionDays(retention) : undefined,
    image: core.getInput('image') || undefined,
    tags: listInput('tags').length > 0 ? listInput('tags') : ['latest'],
    labels: parseLabels(core.getInput('labels')),
    registryUsername: core.getInput('registry-username') || undefined,
    registryPassword: password || undefined,
    authFile: core.getInput('auth-file') ? resolve(core.getInput('auth-file')) : undefined,
    skipUnchanged: booleanInput('skip-unchanged', false),
    tlsVerify: booleanInput('tls-verify', true),
    ...(signing && { signing }),
    mask: (secret) => core.setSecret(secret),
    onAuthDir: (dir) => core.saveState(AUTH_DIR_STATE.push, dir),
    log: (m) => core.info(m),
  };
}

/** attest: true — checked before composing, so a missing permission fails in seconds, not after the compose. */
function withAttest(mode: Mode, publish: PublishInputs): PublishInputs {
  if (!booleanInput('attest', false)) return publish;
  const token = core.getInput('github-token');
  if (token) core.setSecret(token);
  checkAttest(mode === 'merge' || publish.upload === 'oci' || publish.upload === 'both', token, process.env);
  return { ...publish, attest: { token } };
}

function setOutputs(outputs: Record<string, string>): void {
  for (const [name, value] of Object.entries(outputs)) core.setOutput(name, value);
}

/** mode: merge — one image index over the images the per-architecture jobs pushed. */
async function merge(publish: PublishInputs): Promise<void> {
  await ensureTools([REQUIREMENTS.skopeo], (m) => core.info(m));
  const arches = listInput('architectures');
  if (arches.length === 0) throw new UsageError('mode: merge needs architectures: the list the compose jobs pushed');
  const merged = await publishMerge(selectArches(arches, 'architectures'), publish);
  setOutputs(merged.outputs);
  const attested = await attestIndex(merged.index!, publish);
  setOutputs(attested.outputs);
  const index = merged.index!;
  core.summary.addHeading('Extensions image index', 2);
  const signature = index.referrers.find((r) => r.predicateType === SIGN_PREDICATE);
  core.summary.addRaw(`<code>${index.ref}</code>${index.changed ? '' : ' (unchanged, nothing pushed)'}${signature ? `, signature <code>${signature.digest}</code>` : ''}`, true);
  core.summary.addTable([
    [{ data: 'Architecture', header: true }, { data: 'Image', header: true }, { data: 'State', header: true }],
    ...index.images.map((i) => [i.arch, `<code>${i.digest}</code>`, `<code>${i.stateChecksum}</code>`]),
  ]);
  for (const p of attested.provenance) core.summary.addRaw(`Provenance attestation of the index: <a href="${p.url}">${p.url}</a>`, true);
  await core.summary.write();
}

/** What the compose job published, and the provenance attested for it (attest). */
type Published = PublishResult & { provenance: Provenance[] };

function publishedLines({ artifacts, images, provenance }: Published): string[] {
  return [
    ...artifacts.map((a) => `${a.arch}: artifact [${a.name}](${a.url}) (sha256 \`${a.digest}\`)`),
    ...images.map((i) => {
      const signature = i.referrers.find((r) => r.predicateType === SIGN_PREDICATE);
      return `${i.arch}: image \`${i.ref}\`${i.changed ? '' : ' (unchanged, not pushed)'}${signature ? `, signature \`${signature.digest}\`` : ''}`;
    }),
    ...provenance.map((p) => `${p.arch}: provenance attestation [${p.attestationId}](${p.url})`),
  ];
}

type Mode = 'compose' | 'validate' | 'merge';

function modeInput(): Mode {
  const mode = core.getInput('mode') || 'compose';
  if (mode !== 'compose' && mode !== 'validate' && mode !== 'merge') {
    throw new UsageError(`mode must be compose, validate or merge, got "${mode}"`);
  }
  return mode;
}

export async function run(): Promise<void> {
  const configPath = resolve(core.getInput('config') || 'extensions.yaml');
  try {
    const mode = modeInput();
    if (mode === 'merge') await merge(withAttest(mode, publishInputs()));
    else if (mode === 'compose') await composeMode(configPath, withAttest(mode, publishInputs()));
    // Fork pull requests have no credentials: validate never reads them.
    else await validateMode(configPath);
  } catch (err) {
    if (err instanceof ConfigError) annotateConfig(err);
    core.setFailed(escapeLines(err instanceof Error ? err.message : String(err)));
  }
}

/** mode: compose — resolve, download and write every architecture's repo, then publish it. */
async function composeMode(configPath: string, publish: PublishInputs): Promise<void> {
  const output = resolve(core.getInput('output') || 'extensions-output');
  await checkSigning(publish);
  const resolved = await resolveExtensions('compose', configPath, output, publish);
  await reportRun('compose', resolved, resolved.published, output);
}

/** mode: validate — depsolve every architecture, write nothing. */
async function validateMode(configPath: string): Promise<void> {
  await reportRun('validate', await resolveExtensions('validate', configPath, ''), undefined, '');
}

interface Resolved {
  configPath: string;
  options: ComposeOptions;
  previous?: Awaited<ReturnType<typeof loadPrevious>>;
  result?: ComposeResult;
  /** Uploaded or pushed while the output was still locked. */
  published?: Published;
  failures: ComposeProblem[];
}

/** Checks the config, then runs the engine: a failed compose is reported, not thrown. */
async function resolveExtensions(mode: 'compose' | 'validate', configPath: string, output: string, publish?: PublishInputs): Promise<Resolved> {
  // The schema first: a broken file is reported alone, with every problem at its line.
  await validateConfig(configPath);
  const base = baseInput();
  const pushing = publish?.upload === 'oci' || publish?.upload === 'both';
  await ensureTools(
    [
      REQUIREMENTS.rpm, REQUIREMENTS.dnf,
      ...(mode === 'compose' ? [REQUIREMENTS.createrepo] : []),
      ...(base.kind === 'ostree' ? [REQUIREMENTS.ostree] : []),
      ...(pushing || base.kind === 'image' ? [REQUIREMENTS.skopeo] : []),
      ...(mode === 'compose' && !['', 'false'].includes(core.getInput('sysext').trim())
        // fakeroot and setcap only matter for non-root owners and capabilities: checked where used.
        ? [core.getInput('sysext-format') === 'squashfs' ? REQUIREMENTS.squashfs : REQUIREMENTS.erofs, REQUIREMENTS.rpm2archive]
        : []),
    ],
    (m) => core.info(m),
  );
  const options = composeOptions(mode, configPath, base, output);
  const previous = await previousInput(options.arches);
  // Published before the output lock goes, so that a concurrent run cannot swap it mid-upload; a
  // publishing error is kept apart from the compose's own failures and thrown as before.
  let published: Published | undefined;
  let publishError: { error: unknown } | undefined;
  if (publish && publish.upload !== 'none' && mode === 'compose') {
    options.whileLocked = async (result) => {
      try {
        published = await publishOutputs(result, publish);
      } catch (error) {
        publishError = { error };
      }
    };
  }
  let result: ComposeResult;
  try {
    result = await composeWithBaseRegistry(options);
  } catch (err) {
    if (!(err instanceof ComposeError)) throw err;
    return { configPath, options, previous, failures: await locateFailures(err.problems, configPath) };
  }
  if (publishError) throw publishError.error;
  return { configPath, options, previous, result, ...(published && { published }), failures: [] };
}

function composeOptions(mode: 'compose' | 'validate', configPath: string, base: BaseSpec, output: string): ComposeOptions {
  return {
    config: configPath,
    base,
    arches: selectArches(listInput('architectures'), 'architectures'),
    reposDir: core.getInput('repos-dir') || '/etc/yum.repos.d',
    ...(listInput('vars-dir').length > 0 && { varsDirs: listInput('vars-dir').map((d) => resolve(d)) }),
    ...(core.getInput('dnf-conf') && { dnfConf: resolve(core.getInput('dnf-conf')) }),
    repoPairs: listInput('repos'),
    releasever: core.getInput('releasever') || undefined,
    weakDeps: booleanInput('weak-deps', true),
    cacheDir: resolve(core.getInput('cache-dir') || defaultCacheDir()),
    previousState: listInput('previous-state'),
    output,
    dnf: dnfPreference(core.getInput('dnf'), 'dnf'),
    mode: mode === 'compose' ? 'compose' : 'depsolve',
    strictCrossArch: booleanInput('strict-cross-arch', false),
    waitLock: booleanInput('wait-lock', false),
    allowEmpty: booleanInput('allow-empty', false),
    sbom: sbomChoice(core.getInput('sbom'), 'sbom'),
    ...(() => {
      const sysext = parseSysext(core.getInput('sysext') || undefined, core.getInput('sysext-format') || undefined, 'sysext', core.getInput('sysext-url') || undefined, core.getInput('sysext-strict') || undefined, {
        ...(core.getInput('sysext-compression') && { compression: core.getInput('sysext-compression') }),
        ...(booleanInput('sysext-any-id', false) && { anyId: true }),
      });
      return sysext ? { sysext } : {};
    })(),
    log: actionLogger,
  };
}

async function previousInput(arches: string[]) {
  const source = core.getInput('previous-metadata');
  if (!source) return undefined;
  const authFile = core.getInput('auth-file') ? resolve(core.getInput('auth-file')) : undefined;
  return loadPrevious(source, arches, { ...(authFile && { authFile }), tlsVerify: booleanInput('tls-verify', true) });
}

/** The engine, with the base's registry credentials set up for it (masked first) and removed after. */
async function composeWithBaseRegistry(options: ComposeOptions): Promise<ComposeResult> {
  const password = core.getInput('base-registry-password');
  for (const secret of password ? secretsToMask(core.getInput('base-registry-username'), password) : []) core.setSecret(secret);
  return withBaseRegistry(
    options.base,
    {
      username: core.getInput('base-registry-username') || undefined,
      password: password || undefined,
      authFile: core.getInput('base-auth-file') ? resolve(core.getInput('base-auth-file')) : undefined,
      tlsVerify: booleanInput('tls-verify', true),
      onAuthDir: (dir) => core.saveState(AUTH_DIR_STATE.base, dir),
    },
    (base, release) => compose({ ...options, base, onBasesRead: release }),
  );
}

async function publishOutputs(result: ComposeResult, publish: PublishInputs): Promise<Published> {
  const published = await publishComposed(result.arches.map(({ arch, outputDir, stateChecksum }) => ({ arch, outputDir, stateChecksum })), publish);
  setOutputs(published.outputs);
  const attested = await attestImages(published.images, publish);
  setOutputs(attested.outputs);
  return { ...published, provenance: attested.provenance };
}

/** Outputs, the job summary and annotations; a failed compose fails the step. */
async function reportRun(mode: 'compose' | 'validate', resolved: Resolved, published: Published | undefined, output: string): Promise<void> {
  const { options, previous, result, failures } = resolved;
  const title = mode === 'compose' ? 'Extensions composed' : 'Extensions validated';
  const report = buildReport(title, result?.arches ?? [], {
    failures, previous, crossArchStrict: options.strictCrossArch,
    published: published ? publishedLines(published) : [],
  });
  for (const m of report.crossArch.slice(0, MAX_ANNOTATIONS)) {
    if (!options.strictCrossArch) core.warning(escapeControl(`${m.extension}: ${m.package} differs across architectures`), { title: 'cross-architecture' });
  }
  if (previous) {
    const diff = JSON.stringify(diffJson(report));
    core.setOutput('diff', diff);
    if (result && mode === 'compose') await writeDiff(output, diff);
  }
  if (result) {
    core.setOutput('state-checksum', result.stateChecksum);
    core.setOutput('changed', String(published?.changed ?? result.changed));
    if (mode === 'compose') {
      core.setOutput('output-dir', output);
      const metadata = Object.fromEntries(result.arches.map((a) => [a.arch, a.metadataPath]));
      core.setOutput('metadata', result.arches.length === 1 ? result.arches[0]!.metadataPath : JSON.stringify(metadata));
    }
  }
  await core.summary.addRaw(renderMarkdown(report), true).write();
  if (failures.length > 0) {
    annotateCompose(failures);
    core.setFailed(`${failures.length} problem${failures.length === 1 ? '' : 's'}:\n${failures.map((p) => formatComposeProblem(p)).join('\n')}`);
  }
}
