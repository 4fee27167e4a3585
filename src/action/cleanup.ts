// The action's post step (runs.post, post-if: always()): removes the registry auth files even when
// the main step failed or was cancelled before its own cleanup ran.
import * as core from '@actions/core';
import { removeAuthDir, removeStaleSecrets } from '../tools/registry-auth.js';

/** Action state names under which the main step saves auth directories (core.saveState). */
export const AUTH_DIR_STATE = { push: 'registry-auth-dir', base: 'base-registry-auth-dir' } as const;

export async function runPost(): Promise<void> {
  for (const name of Object.values(AUTH_DIR_STATE)) {
    const dir = core.getState(name);
    if (!dir) continue;
    try {
      await removeAuthDir(dir);
    } catch (err) {
      core.warning(`could not remove the registry auth file in ${dir}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  // A main step killed outright (SIGKILL) saved its state but never removed the file: its process is gone now.
  await removeStaleSecrets().catch(() => undefined);
}
