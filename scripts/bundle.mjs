// Builds dist/: one ESM bundle per entry point with ncc, plus the dnf helpers they run.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const out = process.argv[2] ?? 'dist';
const entries = { cli: 'src/cli/index.ts', action: 'src/action/index.ts', post: 'src/action/post.ts' };
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const [name, entry] of Object.entries(entries)) {
  const tmp = mkdtempSync(join(tmpdir(), 'ncc-'));
  execFileSync('npx', ['ncc', 'build', entry, '-o', tmp, '--quiet', '--target', 'es2022'], { stdio: 'inherit' });
  for (const file of readdirSync(tmp)) {
    // ncc turns an import it cannot resolve into a require() that fails when the bundle runs.
    if (file.endsWith('.js') && readFileSync(join(tmp, file), 'utf8').includes('eval("require")(')) {
      throw new Error(`${entry}: ncc could not resolve an import (see eval("require") in its ${file})`);
    }
    if (file === 'index.js') renameSync(join(tmp, file), join(out, `${name}.js`));
    else if (file === 'package.json') continue;
    else {
      // Chunks of lazily imported modules (<id>.index.js) are loaded from beside the bundle, so
      // two entries' chunks share dist/: one of the same name must be the same file.
      const target = join(out, file);
      if (existsSync(target) && !readFileSync(target).equals(readFileSync(join(tmp, file)))) {
        throw new Error(`${name} and an earlier entry both emit a different ${file}`);
      }
      renameSync(join(tmp, file), target);
    }
  }
  rmSync(tmp, { recursive: true, force: true });
}
// Every Python module of the helpers: the two programs and what they import beside themselves.
for (const helper of readdirSync('src/solve').filter((f) => f.endsWith('.py'))) copyFileSync(join('src/solve', helper), join(out, helper));
