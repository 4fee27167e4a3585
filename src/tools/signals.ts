// Exit paths of the command line and the action's main step. SIGINT, SIGTERM and SIGHUP (Ctrl-C,
// a CI cancel, `timeout`, a closed terminal) end the process with the shell's code for that signal
// (130, 143, 129) through process.exit, so every synchronous 'exit' listener runs: that is where
// secrets are removed (see registry-auth.ts). Child processes started with execa are killed on
// exit by execa itself. SIGKILL runs nothing: what it leaves is removed by the next run.
import { constants } from 'node:os';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** The exit code for a signal, as a shell reports it: 128 + its number. */
export const exitCodeForSignal = (signal: (typeof SIGNALS)[number]): number => 128 + constants.signals[signal];

let installed = false;

/** Installs the handlers once; `say` reports the signal (to stderr) before the process exits. */
export function exitOnSignals(say: (message: string) => void = (m) => process.stderr.write(`${m}\n`)): void {
  if (installed) return;
  installed = true;
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      try {
        say(`error: stopped by ${signal}`);
      } finally {
        process.exit(exitCodeForSignal(signal));
      }
    });
  }
}
