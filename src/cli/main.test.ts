// The CLI's handling of hostile configs: exit codes and what reaches the terminal.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from './main.js';

let dir: string;
beforeAll(async () => (dir = await mkdtemp(join(tmpdir(), 'ce-cli-'))));
afterAll(() => rm(dir, { recursive: true }));

let n = 0;
async function validate(yaml: string, ...extra: string[]) {
  const file = join(dir, `extensions-${++n}.yaml`);
  await writeFile(file, yaml);
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['validate', '--config', file, ...extra], { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { file, code, out: out.join('\n'), err: err.join('\n') };
}

test('an alias bomb is an invalid config: exit 2 with file:line:col', async () => {
  const lol = ['extensions:', '  a:', '    packages: &a0 [l, l, l, l, l, l, l, l, l]'];
  for (let i = 1; i < 9; i++) lol.push(`  b${i}:`, `    packages: &a${i} [${Array(9).fill(`*a${i - 1}`).join(', ')}]`);
  const r = await validate(lol.join('\n') + '\n');
  expect(r.code).toBe(2);
  expect(r.err).toBe(
    `error: 1 problem in configuration:\n  ${r.file}:5:20: YAML aliases expand too much (a "billion laughs" alias bomb?); write the values out instead`,
  );
});

test('a second document: exit 2 with our message', async () => {
  const r = await validate('extensions:\n  a:\n    packages: [a]\n---\nrepos: []\n');
  expect(r.code).toBe(2);
  expect(r.err).toBe(
    `error: 1 problem in configuration:\n  ${r.file}:4:1: a second YAML document: extensions.yaml holds one document; remove this \`---\` and what follows, or merge it into the first`,
  );
});

test('control characters from the config are escaped on stderr and stdout', async () => {
  const bad = await validate('extensions:\n  "evil\\e[2J\\n::error::x":\n    packages: [a]\n    kind: "os\\e]0;t\\a"\n');
  expect(bad.code).toBe(2);
  expect(bad.err).toBe(
    `error: 1 problem in configuration:\n  ${bad.file}:4:11: extensions.evil\\u001b[2J\\n::error::x.kind: unknown kind "os\\u001b]0;t\\u0007"; valid kinds: os-extension, development`,
  );
  const ok = await validate('extensions:\n  "evil\\e[2J\\u0085x":\n    packages: [a]\n');
  expect(ok.code).toBe(0);
  expect(ok.out).toBe(`${ok.file}: valid, 1 extensions (evil\\u001b[2J\\u0085x)`);
  // JSON output keeps the value (JSON escapes it).
  const json = await validate('extensions:\n  "evil\\e":\n    packages: [a]\n', '--json');
  expect(JSON.parse(json.out).extensions).toEqual(['evil\u001b']);
  expect(json.out).not.toContain('\u001b');
});

test('a --repo value with a newline is bad usage, printed on one line', async () => {
  const err: string[] = [];
  const config = join(dir, 'valid.yaml');
  await writeFile(config, 'extensions:\n  a:\n    packages: [a]\n');
  const code = await main(['compose', '--config', config, '--rootfs', dir, '--output', join(dir, 'o'), '--repo', 'x=http://a/\ngpgcheck=0'], {
    out: () => {}, err: (t) => err.push(t),
  });
  expect(code).toBe(2);
  expect(err[0]).toBe('error: --repo x=http://a/\\ngpgcheck=0: the URL must not contain white space or control characters');
});
