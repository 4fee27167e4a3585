// Node's young generation, capped. While a compose runs, V8 grows it to 32 MiB (Node 20) or up to
// 128 MiB (Node 24); with 2 MiB semispaces the benchmark's cold run took as long and Node's peak RSS
// was 10–20 MiB lower (bench/README.md). The size is a startup flag only, so each entry point starts
// again with it: process.execve (Node 22.15+, 23.11+ and 24, which GitHub runs actions on) replaces
// the process, same pid and stdio, before any other module of the bundle has run. Where Node lacks
// it, the run goes on as started.

export const YOUNG_GENERATION_FLAG = '--max-semi-space-size=2';

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

export interface NodeProcess {
  execPath: string;
  execArgv: string[];
  argv: string[];
  env: NodeJS.ProcessEnv;
  execve?: Execve;
}

/** The command line to start again with, or undefined: no process.execve, or the size is set already. */
export function relaunchArgv(node: NodeProcess): string[] | undefined {
  if (typeof node.execve !== 'function') return undefined;
  const given = [...node.execArgv, ...(node.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (given.some((arg) => /^--max[-_]semi[-_]space[-_]size(=|$)/.test(arg))) return undefined; // the user's own choice
  return [node.execPath, ...node.execArgv, YOUNG_GENERATION_FLAG, ...node.argv.slice(1)];
}

/** Starts this Node again with the young generation capped; returns only where it cannot. */
export function relaunchWithSmallYoungGeneration(node: NodeProcess = process as NodeProcess): void {
  const argv = relaunchArgv(node);
  if (!argv) return;
  try {
    node.execve!(node.execPath, argv, node.env);
  } catch {
    // A sandbox that forbids exec: the run goes on, with V8's default young generation.
  }
}
