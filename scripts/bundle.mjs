// Builds dist/: one ESM bundle per entry point with ncc, plus the dnf helpers they run.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
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
    if (file === 'index.js') renameSync(join(tmp, file), join(out, `${name}.js`));
    else if (file === 'package.json') continue;
    else renameSync(join(tmp, file), join(out, file));
  }
  rmSync(tmp, { recursive: true, force: true });
}
for (const helper of ['dnf4-helper.py', 'dnf5-helper.py', 'helper_serve.py']) copyFileSync(join('src/solve', helper), join(out, helper));
