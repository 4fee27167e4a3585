// A process started under RLIMIT_FSIZE: no file it writes may pass a size, so a hostile server
// cannot make dnf or ostree fill the disk. util-linux's prlimit sets it and execs the command
// (about 0.4 ms more per start); where it is missing (rare), the command runs without the limit.
import { existsSync } from 'node:fs';

const PRLIMIT = ['/usr/bin/prlimit', '/bin/prlimit'].find((p) => existsSync(p));

/** `[file, args]` running `file args` with files limited to `maxBytes` each. */
export function underFileSizeLimit(file: string, args: readonly string[], maxBytes: number): [string, string[]] {
  return PRLIMIT ? [PRLIMIT, [`--fsize=${maxBytes}`, '--', file, ...args]] : [file, [...args]];
}
