// The command-line entry point: translates argv into ComposeOptions and the result into text or JSON.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { compose, defaultCacheDir, locateFailures, validateConfig, type ComposeOptions, type ComposeResult, type Logger } from '../engine.js';
import { ComposeError, ConfigError, escapeControl, escapeLines, exitCodeFor, formatComposeProblem, formatProblem, UsageError, type ComposeProblem } from '../errors.js';
import { loadPrevious } from '../inputs/previous.js';
import { selectBase, withBaseRegistry } from '../base/base-spec.js';
import { buildReport, diffJson, renderText, writeDiff } from '../report/report.js';
import { dnfPreference } from '../solve/dnf.js';
import type { BaseSpec } from '../base/types.js';
import { KNOWN_ARCHITECTURES } from '../inputs/extensions-yaml.js';
import { selectArches } from '../inputs/arch.js';
import { GENERATOR } from '../version.js';
import { mergeCommand, publishCommand } from './publish.js';
import { sbomChoice } from '../metadata/sbom.js';
import { parseSysext } from '../sysext/options.js';

export const USAGE = `Usage:
  compose-extensions compose --config FILE (--ostree-repo DIR|URL --base-rev REF | --rootfs DIR|TAR|URL | --base-image REF)
      [--base-sha256 HEX] [--base-authfile FILE | --base-registry-username USER --base-registry-password-stdin]
      [--tls-verify BOOL] [--arch ARCH]... [--repos-dir DIR] [--vars-dir DIR]... [--dnf-conf FILE] [--repo ID=URL]... [--releasever N] [--no-weak-deps]
      [--cache-dir DIR] [--previous-state SUM]... [--dnf auto|dnf5|dnf4]
      [--previous-metadata SRC] [--strict-cross-arch] [--wait-lock] [--allow-empty]
      [--sbom spdx|cyclonedx|both|none] [--sysext[=NAME,...]] [--sysext-format erofs|squashfs] [--sysext-url URL]
      [--sysext-strict CLASS,...] [--sysext-compression ALGO] [--sysext-any-id] --output DIR [--json]
  compose-extensions validate --config FILE [--json]
  compose-extensions validate --depsolve --config FILE (BASE as for compose)
      [the compose options but --output, --previous-state, --allow-empty and --sbom] [--json]
  compose-extensions publish --output DIR --image REPO [--tag TAG]... [--arch ARCH]... [--label KEY=VALUE]...
      [--authfile FILE | --registry-username USER --registry-password-stdin] [--skip-unchanged]
      [--source URL] [--revision REV] [--tls-verify BOOL] [--wait-lock] [--json]
  compose-extensions merge --image REPO --arch ARCH... [--tag TAG]...
      [--authfile FILE | --registry-username USER --registry-password-stdin] [--skip-unchanged]
      [--tls-verify BOOL] [--json]

Commands:
  compose    Resolve and download the extensions of FILE for each architecture on top of the base,
             and write <output>/<arch>/ with the RPMs, repodata/, extensions.json and metadata.json.
  validate   Check FILE against the extensions.yaml schema and report every problem at once; with
             --depsolve also resolve every extension on every architecture against the base, without
             downloading anything, and report every failure.
  publish    Push each architecture of a compose output directory as the OCI image REPO:TAG-ARCH,
             as the action's upload: oci does (same layout, labels and digest); the image's created
             time is SOURCE_DATE_EPOCH (default 1970-01-01).
  merge      Push one multi-architecture image index REPO:TAG over the REPO:TAG-ARCH images that
             publish pushed (only the index is uploaded), as the action's mode: merge does.

Options:
  --config FILE          extensions.yaml (rpm-ostree format)
  --ostree-repo DIR|URL  OSTree repository holding the base commit; an http(s) URL of an
                         archive-mode repo pulls only the commit's rpmdb and os-release
  --base-rev REF         ref or commit checksum in it; \${basearch} is replaced per architecture
  --rootfs DIR|TAR|URL   a root filesystem (directory, tarball, or its http(s) URL) as the base
  --base-image REF       a bootable container image as the base: registry/name:tag, @sha256:…,
                         docker://…, oci:DIR[:TAG], oci-archive:FILE, or an http(s) URL of an
                         .ociarchive; from a multi-arch index each architecture takes its image
  --base-sha256 HEX      expected sha256 of a base downloaded from a URL (then cached and reused)
  --base-authfile FILE   containers auth.json (mode 0600) for the base image's registry
  --base-registry-username USER  with --base-registry-password-stdin: the password is read from stdin
  --tls-verify BOOL      false to reach a plain-HTTP registry (loopback registries never verify)
  --arch ARCH            architecture to compose, repeatable (${KNOWN_ARCHITECTURES.join(', ')});
                         default: this machine's
  --repos-dir DIR        directory of .repo files (default: /etc/yum.repos.d), used as dnf
                         would: metalink, mirrorlist, proxy, TLS and credential options included
  --vars-dir DIR         directory of repo variable files ($contentdir, $stream…), repeatable;
                         replaces the default /etc/dnf/vars and /etc/yum/vars; DNF_VAR_<name>
                         in the environment wins over both
  --dnf-conf FILE        dnf.conf whose [main] proxy, TLS, credential and timeout options apply
                         to every repo, as in dnf (default: /etc/dnf/dnf.conf; nothing else of it
                         is read)
  --repo ID=URL          an extra repo, repeatable; replaces a .repo file's repo of the same id
  --releasever N         default: VERSION_ID from the base's os-release
  --no-weak-deps         leave weak dependencies (Recommends, Supplements) out
  --cache-dir DIR        dnf metadata, packages, recorded solves and createrepo_c's checksums,
                         reused between runs
                         (default: \$XDG_CACHE_HOME/compose-extensions or ~/.cache/compose-extensions)
  --previous-state SUM   state checksum of an earlier run, repeatable: an architecture whose state
                         equals it is neither downloaded nor written (changed: false)
  --dnf BACKEND          auto (default): dnf5 where its Python bindings (python3-libdnf5) are
                         installed, else dnf4 (python3-dnf); or force dnf5 or dnf4
  --previous-metadata SRC  the previous result to diff against: a metadata.json path or http(s) URL
                         (\${arch} in it for one per architecture), an earlier --output directory,
                         or an image this action published (docker://…, oci:…, oci-archive:…);
                         the diff is printed, included in --json, and written to <output>/diff.json
  --strict-cross-arch    fail when an extension resolves to different versions of a package on
                         different architectures (a warning otherwise)
  --output DIR           where <arch>/ directories are written: all of them replaced at once, or
                         none (see README, Reliability); it must neither contain nor be inside
                         the cache directory, the base or a file:// repo
  --wait-lock            wait while another run holds the output or cache directory, instead of
                         failing at once with the holder's pid, host and start time
  --allow-empty          write an architecture to which no extension applies (an empty repo)
                         instead of failing
  --sbom FORMAT          SBOMs written beside each metadata.json: spdx (sbom.spdx.json, SPDX 2.3,
                         the default), cyclonedx (sbom.cdx.json, CycloneDX 1.6), both or none
  --sysext[=NAME,...]    also write a system extension image per os-extension (or per listed one)
                         and architecture: <output>/<arch>/sysext/<name>-<version>-<VERSION_ID>-<arch>.raw,
                         with SHA256SUMS (see README, System extensions)
  --sysext-format FMT    erofs (default) or squashfs
  --sysext-strict CLASS,...  make these findings errors instead of warnings: shadow (a file the
                         base has, identical), scriptlet (not run), sysusers (usr/lib/sysusers.d),
                         kmod (kernel modules; depmod cannot run)
  --sysext-compression ALGO  erofs: lz4, lz4hc (default: none); squashfs: gzip (default), xz,
                         zstd, lzo, lz4
  --sysext-any-id        ID=_any in extension-release instead of the base's ID and VERSION_ID
  --sysext-url URL       where hosts download the images (\${arch} replaced): the Source Path of
                         the systemd-sysupdate transfer file written per extension
  --json                 print the result as JSON on stdout

Options of publish and merge:
  --image REPO           repository to push to, without a tag (e.g. ghcr.io/my-org/extensions)
  --tag TAG              repeatable (default: latest); publish pushes TAG-ARCH, merge pushes TAG
  --arch ARCH            publish: only these architectures of --output (default: all it holds);
                         merge: the architectures published, each required
  --label KEY=VALUE      an extra image label, repeatable
  --source URL           org.opencontainers.image.source (default: the GitHub repository, if any)
  --revision REV         org.opencontainers.image.revision (default: GITHUB_SHA, if set)
  --authfile FILE        containers auth.json (mode 0600) for the registry; default: skopeo's
                         standard auth locations
  --registry-username USER  with --registry-password-stdin: the password is read from stdin and
                         written only to a mode 0600 auth file that is removed afterwards
  --skip-unchanged       push nothing when the image at every tag already has this state checksum
                         (merge: already is this index)
  --wait-lock            publish: wait while a compose holds --output, instead of failing at once
  publish attaches the SBOMs of each architecture (sbom.*.json) to its image as OCI referrers,
  listed under the tag sha256-<image digest hex> for registries without the referrers API
  -h, --help             show this help
  -V, --version          show the version

Exit status: 0 success, 1 composing or pushing failed, 2 bad usage or an invalid config; 130, 143, 129
when stopped by SIGINT, SIGTERM, SIGHUP (secrets removed first).`;

export interface Io {
  out(text: string): void;
  err(text: string): void;
  stdin?: AsyncIterable<unknown>;
}

const stdio: Io = { out: (t) => process.stdout.write(t + '\n'), err: (t) => process.stderr.write(t + '\n') };

// Log lines carry names from the config and messages from tools: never raw control characters.
function cliLogger(io: Io): Logger {
  const err = (m: string) => io.err(escapeLines(m));
  return {
    info: (m) => err(m),
    warn: (m) => err(`warning: ${m}`),
    scope: (name) => ({ stage() {}, info: (m) => err(`[${name}] ${m}`), warn: (m) => err(`[${name}] warning: ${m}`), end() {} }),
  };
}

function parse(argv: string[]) {
  try {
    return parseArgs({
      // A bare `--sysext` means every os-extension: parseArgs has no optional values.
      args: argv.map((a) => (a === '--sysext' ? '--sysext=' : a)),
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        'ostree-repo': { type: 'string' },
        'base-rev': { type: 'string' },
        rootfs: { type: 'string' },
        arch: { type: 'string', multiple: true },
        'repos-dir': { type: 'string' },
        'vars-dir': { type: 'string', multiple: true },
        'dnf-conf': { type: 'string' },
        repo: { type: 'string', multiple: true },
        releasever: { type: 'string' },
        'no-weak-deps': { type: 'boolean' },
        'cache-dir': { type: 'string' },
        'previous-state': { type: 'string', multiple: true },
        dnf: { type: 'string' },
        depsolve: { type: 'boolean' },
        'previous-metadata': { type: 'string' },
        'strict-cross-arch': { type: 'boolean' },
        'wait-lock': { type: 'boolean' },
        'allow-empty': { type: 'boolean' },
        sbom: { type: 'string' },
        sysext: { type: 'string' },
        'sysext-format': { type: 'string' },
        'sysext-url': { type: 'string' },
        'sysext-strict': { type: 'string' },
        'sysext-compression': { type: 'string' },
        'sysext-any-id': { type: 'boolean' },
        'base-image': { type: 'string' },
        'base-sha256': { type: 'string' },
        'base-authfile': { type: 'string' },
        'base-registry-username': { type: 'string' },
        'base-registry-password-stdin': { type: 'boolean' },
        'tls-verify': { type: 'string' },
        image: { type: 'string' },
        tag: { type: 'string', multiple: true },
        label: { type: 'string', multiple: true },
        source: { type: 'string' },
        revision: { type: 'string' },
        authfile: { type: 'string' },
        'registry-username': { type: 'string' },
        'registry-password-stdin': { type: 'boolean' },
        'skip-unchanged': { type: 'boolean' },
        output: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

type Values = ReturnType<typeof parse>['values'];

function required(values: Values, name: 'config' | 'output'): string {
  const value = values[name];
  if (!value) throw new UsageError(`--${name} is required`);
  return value;
}

export function baseSpec(values: Values): BaseSpec {
  return selectBase(
    { ostreeRepo: values['ostree-repo'], baseRev: values['base-rev'], rootfs: values.rootfs, baseImage: values['base-image'], baseSha256: values['base-sha256'] },
    (field) => `--${field}`,
  );
}

/** Reads a secret from standard input (never from argv), without its trailing newline. */
async function readStdin(io: Io): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin ?? process.stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function tlsVerify(values: Values): boolean {
  const v = values['tls-verify'] ?? 'true';
  if (v !== 'true' && v !== 'false') throw new UsageError(`--tls-verify must be true or false, got "${v}"`);
  return v === 'true';
}

/** The default repos dir may be missing (a Debian host); an explicit one must exist. */
function reposDir(values: Values): string | undefined {
  if (values['repos-dir']) return resolve(values['repos-dir']);
  return existsSync('/etc/yum.repos.d') ? '/etc/yum.repos.d' : undefined;
}

/** Output paths only where something was written: `validate --depsolve` writes nothing. */
export function resultJson(result: ComposeResult, written = true) {
  return {
    stateChecksum: result.stateChecksum,
    changed: result.changed,
    arches: result.arches.map((a) => ({
      arch: a.arch,
      stateChecksum: a.stateChecksum,
      inputFingerprint: a.inputFingerprint,
      reused: a.reused,
      changed: a.changed,
      packageCount: a.packageCount,
      ...(written && { outputDir: a.outputDir, metadata: a.metadataPath, extensionsJson: a.extensionsJsonPath }),
    })),
  };
}

function resultText(result: ComposeResult): string {
  return result.arches
    .map((a) => (a.changed ? `${a.arch}: written to ${escapeControl(a.outputDir)} (metadata: ${escapeControl(a.metadataPath)})` : `${a.arch}: unchanged; nothing written`))
    .join('\n');
}

const optional = <K extends string, V>(key: K, value: V | undefined) => (value === undefined ? {} : ({ [key]: value } as Record<K, V>));

/** The compose options shared by `compose` and `validate --depsolve`. */
function composeOptions(values: Values, mode: 'compose' | 'depsolve', io: Io): ComposeOptions {
  return {
    config: resolve(required(values, 'config')),
    base: baseSpec(values),
    arches: selectArches(values.arch ?? [], '--arch'),
    reposDir: reposDir(values),
    ...(values['vars-dir'] && { varsDirs: values['vars-dir'].map((d) => resolve(d)) }),
    ...(values['dnf-conf'] && { dnfConf: resolve(values['dnf-conf']) }),
    repoPairs: values.repo ?? [],
    releasever: values.releasever,
    weakDeps: !values['no-weak-deps'],
    cacheDir: resolve(values['cache-dir'] ?? defaultCacheDir()),
    previousState: values['previous-state'] ?? [],
    output: mode === 'compose' ? resolve(required(values, 'output')) : '',
    dnf: dnfPreference(values.dnf, '--dnf'),
    mode,
    strictCrossArch: Boolean(values['strict-cross-arch']),
    waitLock: Boolean(values['wait-lock']),
    allowEmpty: Boolean(values['allow-empty']),
    sbom: sbomChoice(values.sbom, '--sbom'),
    ...optional('sysext', parseSysext(values.sysext, values['sysext-format'], '--sysext', values['sysext-url'], values['sysext-strict'], {
      ...(values['sysext-compression'] && { compression: values['sysext-compression'] }),
      ...(values['sysext-any-id'] && { anyId: true }),
    })),
    log: cliLogger(io),
  };
}

/** compose, or validate --depsolve: run, then report (text or JSON), failures included. */
async function composeAndReport(values: Values, mode: 'compose' | 'depsolve', io: Io): Promise<number> {
  const options = composeOptions(values, mode, io);
  const previous = values['previous-metadata'] ? await loadPrevious(values['previous-metadata'], options.arches, { tlsVerify: tlsVerify(values) }) : undefined;
  const password = values['base-registry-password-stdin'] ? await readStdin(io) : undefined;
  if (values['base-registry-password-stdin'] && !values['base-registry-username']) throw new UsageError('--base-registry-password-stdin needs --base-registry-username');
  let result: ComposeResult | undefined;
  let failures: ComposeProblem[] = [];
  try {
    result = await withBaseRegistry(
      options.base,
      { username: values['base-registry-username'], password, authFile: values['base-authfile'] && resolve(values['base-authfile']), tlsVerify: tlsVerify(values) },
      (base, release) => compose({ ...options, base, onBasesRead: release }),
    );
  } catch (err) {
    if (!(err instanceof ComposeError)) throw err;
    failures = await locateFailures(err.problems, options.config);
  }
  const title = mode === 'compose' ? 'Extensions composed' : 'Extensions resolved (validate --depsolve)';
  const report = buildReport(title, result?.arches ?? [], { failures, previous, crossArchStrict: options.strictCrossArch });
  if (result && previous && mode === 'compose') await writeDiff(options.output, JSON.stringify(diffJson(report)));
  if (values.json) {
    io.out(JSON.stringify({
      ok: failures.length === 0,
      ...(result && resultJson(result, mode === 'compose')),
      problems: failures.map((p) => ({ ...p, text: formatComposeProblem(p) })),
      ...(previous && { diff: diffJson(report) }),
      crossArch: report.crossArch,
    }, null, 2));
  } else {
    const text = renderText(report);
    if (text) io.out(text);
    if (result && mode === 'compose') io.out(resultText(result));
  }
  for (const p of failures) io.err(`error: ${formatComposeProblem(p)}`);
  return failures.length > 0 ? 1 : 0;
}

export async function main(argv: string[], io: Io = stdio): Promise<number> {
  let json = false;
  try {
    const { values, positionals } = parse(argv);
    json = Boolean(values.json);
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    if (values.version) {
      io.out(GENERATOR.version);
      return 0;
    }
    const [command, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    if (command === 'validate' && !values.depsolve) {
      const config = await validateConfig(resolve(required(values, 'config')));
      if (json) io.out(JSON.stringify({ valid: true, file: config.file, extensions: config.extensions.map((e) => e.name) }));
      else io.out(escapeControl(`${config.file}: valid, ${config.extensions.length} extensions (${config.extensions.map((e) => e.name).join(', ')})`));
      return 0;
    }
    if (command === 'publish' || command === 'merge') {
      const context = { tlsVerify: tlsVerify(values), readSecret: () => readStdin(io) };
      return await (command === 'publish' ? publishCommand : mergeCommand)(values, io, context);
    }
    if (command !== 'compose' && command !== 'validate') {
      throw new UsageError(command ? `unknown command "${command}"` : 'a command is required: compose, validate, publish or merge');
    }
    return await composeAndReport(values, command === 'compose' ? 'compose' : 'depsolve', io);
  } catch (err) {
    const code = exitCodeFor(err);
    if (json && err instanceof ConfigError) {
      io.out(JSON.stringify({ valid: false, problems: err.problems.map((p) => ({ ...p, text: formatProblem(p) })) }));
    }
    // A usage error's lines are ours, each one line whatever its arguments held; others may span lines (a tool's output).
    const message = err instanceof Error ? err.message : String(err);
    io.err(`error: ${err instanceof UsageError ? err.lines.map(escapeControl).join('\n') : escapeLines(message)}`);
    if (err instanceof UsageError) io.err(`Run 'compose-extensions --help' for usage.`);
    return code;
  }
}
