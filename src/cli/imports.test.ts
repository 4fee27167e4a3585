// The command line's bundle stays free of @actions/* (startup time and size, see tools/http.ts):
// no module the CLI reaches imports one, statically or lazily (ncc would still bundle a lazy one
// as a chunk beside the CLI).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// Static (`import … from`, `export … from`, bare `import '…'`) and lazy (`import('…')`); `import type` is erased.
const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?from\s+)?'([^']+)'|import\(\s*'([^']+)'\s*\)/g;

/** Every module reachable from `entry`, by its imports of other modules in src/, with the packages each imports. */
function reachable(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    const packages: string[] = [];
    seen.set(file, packages);
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const spec = m[1] ?? m[2]!;
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else packages.push(spec);
    }
  };
  visit(entry);
  return seen;
}

test('nothing the CLI imports imports @actions/*', () => {
  const modules = reachable(join(SRC, 'cli/index.ts'));
  expect(modules.has(join(SRC, 'publish/images.ts'))).toBe(true); // publish and merge are in
  expect(modules.has(join(SRC, 'tools/relaunch.ts'))).toBe(true); // a bare import is followed
  const offenders = [...modules].filter(([, packages]) => packages.some((p) => p.startsWith('@actions/'))).map(([file]) => file.slice(SRC.length + 1));
  expect(offenders).toEqual([]);
});

test('the check sees a lazy import too: the action reaches @actions/artifact', () => {
  const modules = reachable(join(SRC, 'action/index.ts'));
  expect(modules.get(join(SRC, 'publish/artifact.ts'))).toContain('@actions/artifact');
});

test('the adapters in tools/ import no stage: nothing from base/ or inputs/', () => {
  const tools = join(SRC, 'tools');
  const offenders = readdirSync(tools)
    .filter((name) => name.endsWith('.ts'))
    .flatMap((name) => [...readFileSync(join(tools, name), 'utf8').matchAll(/from\s+'(\.\.\/(?:base|inputs)\/[^']+)'/g)].map((m) => `tools/${name} -> ${m[1]}`));
  expect(offenders).toEqual([]);
});
