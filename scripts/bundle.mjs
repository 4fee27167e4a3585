// Builds dist/: one ESM bundle per entry point with ncc, plus the dnf helpers they run.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const out = process.argv[2] ?? 'dist';
const entries = { cli: 'src/cli/index.ts', action: 'src/action/index.ts', post: 'src/action/post.ts' };
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const [name, entry] of Object.entries(entries)) {
  const tmp = mkdtempSync(join(tmpdir(), 'ncc-'));
  execFileSync('npx', ['ncc', 'build', entry, '-o', tmp, '--quiet', '--target', 'es2022'], { stdio: 'inherit' });
  const files = readdirSync(tmp);
  for (const file of files) {
    // ncc turns an import it cannot resolve into a require() that fails when the bundle runs.
    if (file.endsWith('.js') && readFileSync(join(tmp, file), 'utf8').includes('eval("require")(')) {
      throw new Error(`${entry}: ncc could not resolve an import (see eval("require") in its ${file})`);
    }
  }
  // Chunks of lazily imported modules (<id>.index.js) are loaded from beside the bundle, so two
  // entries' chunks share dist/: one of the same name must be the same file. When it is not (the
  // same lazy module under another module id, as cacache's p-map in the CLI and the action), this
  // entry's copy is stored as <entry>-<id>.index.js and its chunk loader told so.
  const renamed = [];
  for (const file of files.filter((f) => f !== 'index.js' && f !== 'package.json')) {
    const target = join(out, file);
    if (existsSync(target) && !readFileSync(target).equals(readFileSync(join(tmp, file)))) {
      const id = /^(\d+)\.index\.js$/.exec(file)?.[1];
      if (!id) throw new Error(`${name} and an earlier entry both emit a different ${file}`);
      renamed.push(id);
      renameSync(join(tmp, file), join(out, `${name}-${file}`));
    } else {
      renameSync(join(tmp, file), target);
    }
  }
  let bundle = readFileSync(join(tmp, 'index.js'), 'utf8');
  if (renamed.length > 0) {
    const loader = 'return "" + chunkId + ".index.js";';
    if (bundle.split(loader).length !== 2) throw new Error(`${entry}: ncc's chunk loader not found, cannot rename its chunks ${renamed.join(', ')}`);
    bundle = bundle.replace(loader, `return (${JSON.stringify(renamed)}.includes(String(chunkId)) ? ${JSON.stringify(`${name}-`)} : "") + chunkId + ".index.js";`);
  }
  writeFileSync(join(out, `${name}.js`), bundle, { mode: statSync(join(tmp, 'index.js')).mode & 0o777 });
  rmSync(tmp, { recursive: true, force: true });
}
// Every Python module of the helpers: the two programs and what they import beside themselves.
for (const helper of readdirSync('src/solve').filter((f) => f.endsWith('.py'))) copyFileSync(join('src/solve', helper), join(out, helper));
