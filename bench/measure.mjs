// Runs one command and measures it: wall time, CPU time (GNU time: user+sys of it and its waited-for
// descendants), the peak of the summed RSS and PSS of its whole process tree (sampled from /proc
// every 20 ms; RSS counts shared pages once per process, PSS splits them and is read where the RSS
// peaks) and the largest single process (GNU time's %M: getrusage's ru_maxrss, the maximum over the
// tree, not a sum). On 2 cores the sampler must not slow what it measures: a sample costs a few
// reads per process.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PAGE = 4096;
const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/**
 * The pids of `root` and all its descendants, from each process's `children` list (no scan of
 * /proc). Only the main thread's list is read: node, bash, GNU time and dnf start their children
 * from their main thread.
 */
function treePids(root) {
  const pids = [];
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop();
    let children;
    try {
      children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    pids.push(pid);
    for (const child of children.split(' ')) if (child) todo.push(Number(child));
  }
  return pids;
}

/** {rss bytes, comm} of one process, or undefined once it has exited. */
function stat(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // Fields after "(comm) ": state ppid … ; rss is field 24 (index 21 here). comm may hold spaces.
  const close = text.lastIndexOf(')');
  return { rss: Number(text.slice(close + 2).split(' ')[21]) * PAGE, comm: text.slice(text.indexOf('(') + 1, close) };
}

/** Proportional set size: shared pages divided among the processes sharing them. */
function pss(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Summed RSS of `root` and all its descendants, how many processes that is, and the RSS summed per
 * command name (e.g. all python3 processes together); their summed PSS too when `withPss` says so
 * for that RSS (reading PSS walks every page table, the most costly part of a sample).
 */
export function treeRss(root, withPss = () => true) {
  const procs = treePids(root).map((pid) => ({ pid, ...stat(pid) })).filter((p) => p.rss !== undefined);
  const rss = procs.reduce((sum, p) => sum + p.rss, 0);
  const byCommand = {};
  for (const p of procs) byCommand[p.comm] = (byCommand[p.comm] ?? 0) + p.rss;
  const pssSum = withPss(rss) ? procs.reduce((sum, p) => sum + pss(p.pid), 0) : 0;
  return { rss, pss: pssSum, count: procs.length, byCommand };
}

function loadavg() {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/**
 * Runs file+args to completion. Resolves with the measurements, stdout, and stderr lines each
 * stamped with milliseconds since the start (phases are read from a tool's progress lines).
 * Rejects when the command exits non-zero, with its stderr.
 */
export function measure(file, args, { env = process.env, cwd, intervalMs = 20 } = {}) {
  const tmp = mkdtempSync(join(tmpdir(), 'bench-time-'));
  const timeFile = join(tmp, 'time');
  const [cmd, argv] = GNU_TIME ? [GNU_TIME, ['-f', '%e %U %S %M', '-o', timeFile, file, ...args]] : [file, args];
  const loadBefore = loadavg();
  const started = process.hrtime.bigint();
  const child = spawn(cmd, argv, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let peak = 0;
  let peakPss = 0;
  let peakProcesses = 0;
  let pssTakenAt = 0;
  const peakByCommand = {};
  const sample = () => {
    // PSS where the RSS reaches a new peak (by 1 MiB or more): the PSS peak is there too, give or
    // take shared pages, and reading PSS (5 ms for node and the dnf helper) at every sample took a
    // quarter of a core.
    const { rss, pss: p, count, byCommand } = treeRss(child.pid, (r) => r > pssTakenAt + 1048576);
    if (p > 0) pssTakenAt = rss;
    if (rss > peak) peak = rss;
    if (p > peakPss) peakPss = p;
    if (count > peakProcesses) peakProcesses = count;
    for (const [comm, r] of Object.entries(byCommand)) if (r > (peakByCommand[comm] ?? 0)) peakByCommand[comm] = r;
  };
  const timer = setInterval(sample, intervalMs);
  sample();
  const stdout = [];
  const stderrLines = [];
  let partial = '';
  child.stdout.on('data', (d) => stdout.push(d));
  child.stderr.on('data', (d) => {
    const at = Number(process.hrtime.bigint() - started) / 1e6;
    const text = partial + d.toString();
    const lines = text.split('\n');
    partial = lines.pop();
    for (const line of lines) stderrLines.push({ at, line });
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      if (partial) stderrLines.push({ at: wall * 1000, line: partial });
      let cpu, maxProcessRss;
      if (GNU_TIME && existsSync(timeFile)) {
        const last = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
        cpu = last[1] + last[2];
        maxProcessRss = last[3] * 1024;
      }
      rmSync(tmp, { recursive: true, force: true });
      const result = {
        wall,
        cpu,
        peakTreeRss: peak,
        peakTreePss: peakPss,
        peakByCommand,
        maxProcessRss,
        peakProcesses,
        load: [loadBefore, loadavg()],
        stdout: Buffer.concat(stdout).toString(),
        stderrLines,
      };
      if (code !== 0) {
        const err = new Error(`${file} exited with ${code}:\n${stderrLines.slice(-30).map((l) => l.line).join('\n')}`);
        err.result = result;
        reject(err);
      } else resolve(result);
    });
  });
}
