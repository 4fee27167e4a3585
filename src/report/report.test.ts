import { buildReport, diffJson, renderMarkdown, renderText, SUMMARY_LIMIT, writeDiff, type ArchSummary } from './report.js';

const arch = (name: string, packages: string[], extra: Partial<ArchSummary> = {}): ArchSummary => ({
  arch: name,
  stateChecksum: `sha256:${'a'.repeat(64)}`,
  changed: true,
  packageCount: packages.length,
  timings: { base: 120, solve: 900 },
  extensions: { usbguard: { kind: 'os-extension', requested: ['usbguard'], packages, size: 3 * 1048576 } },
  ...extra,
});

test('a table per architecture with sizes, changes and timings', () => {
  const report = buildReport('Extensions composed', [arch('x86_64', ['usbguard-1.1-1.x86_64', 'libqb-2-1.x86_64'])], {
    previous: new Map([['x86_64', { extensions: { usbguard: { packages: ['usbguard-1.0-1.x86_64'] } } }]]),
  });
  const md = renderMarkdown(report);
  expect(md).toContain('### x86_64\n\n2 packages · state `sha256:aaaa');
  expect(md).toContain('| Extension | Kind | Packages | Download size | Changes |');
  expect(md).toContain('| usbguard | os-extension | 2 | 3.0 MiB | +1 ↑1 |');
  expect(md).toContain('Timings: base 0.1 s · solve 0.9 s');
  expect(md).toContain('<details><summary>usbguard: +1 ↑1</summary>');
  expect(md).toContain('+ libqb.x86_64 2-1\n↑ usbguard.x86_64 1.0-1 → 1.1-1');
  expect(renderText(report)).toContain('changes in usbguard on x86_64:\n  + libqb.x86_64 2-1\n  ↑ usbguard.x86_64 1.0-1 → 1.1-1');
  expect(diffJson(report).arches[0]!.extensions['usbguard']!.upgraded).toHaveLength(1);
});

test('failures and cross-architecture differences are listed', () => {
  const report = buildReport('Extensions validated', [
    arch('x86_64', ['usbguard-1.1-1.x86_64']),
    arch('aarch64', ['usbguard-1.0-1.aarch64']),
  ], { failures: [{ arch: 's390x', extension: 'usbguard', message: 'nothing provides libqb.so.100 needed by usbguard-1.1-1.s390x' }] });
  const md = renderMarkdown(report);
  expect(md).toContain('### ❌ 1 problem\n\n- usbguard on s390x: nothing provides libqb.so.100 needed by usbguard-1.1-1.s390x');
  expect(md).toContain('| Extension | Package | x86_64 | aarch64 |');
  expect(md).toContain('| usbguard | usbguard | 1.1-1 | 1.0-1 |');
  expect(renderText(report)).toContain('warning: usbguard: usbguard differs across architectures: x86_64 1.1-1; aarch64 1.0-1');
});

test('markup in names is escaped', () => {
  const report = buildReport('t', [], { failures: [{ message: '<script>|x' }] });
  expect(renderMarkdown(report)).toContain('- &lt;script&gt;\\|x');
});

test('the summary stays under GitHub’s 1 MiB limit, folding the package lists first', () => {
  const many = Array.from({ length: 40000 }, (_, i) => `package-number-${i}-1.0-1.x86_64`);
  const report = buildReport('big', [arch('x86_64', many)], { previous: new Map([['x86_64', { extensions: { usbguard: { packages: [] } } }]]) });
  const full = renderMarkdown(report, Number.MAX_SAFE_INTEGER);
  expect(Buffer.byteLength(full)).toBeGreaterThan(SUMMARY_LIMIT);
  const md = renderMarkdown(report);
  expect(Buffer.byteLength(md)).toBeLessThanOrEqual(SUMMARY_LIMIT);
  expect(Buffer.byteLength(md)).toBeLessThan(1024 * 1024);
  expect(md).toContain('| usbguard | os-extension | 40000 |');
  expect(md).toContain('Package-level changes left out');
  // A tiny limit still yields a bounded document.
  expect(Buffer.byteLength(renderMarkdown(report, 2000))).toBeLessThanOrEqual(2000);
});

test('diff.json is written even where the output directory does not exist yet (every architecture unchanged)', async () => {
  const { mkdtemp, readFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const output = join(await mkdtemp(join(tmpdir(), 'ce-diff-')), 'not-yet');
  await writeDiff(output, '{"arches":[]}');
  expect(await readFile(join(output, 'diff.json'), 'utf8')).toBe('{"arches":[]}\n');
});

test('control characters in names are escaped in both reports', () => {
  const name = 'evil\u001b[2J\n::error::forged';
  const report = buildReport('Extensions composed', [arch('x86_64', ['usbguard-1.1-1.x86_64'], {
    extensions: { [name]: { kind: 'os-extension', requested: ['x'], packages: ['usbguard-1.1-1.x86_64'], size: 1 } },
  })], { failures: [{ arch: 'x86_64', extension: name, message: 'no package matches a\u009bb' }] });
  const text = renderText(report);
  const md = renderMarkdown(report);
  for (const out of [text, md]) expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]|\n::/);
  expect(text).toContain('  evil\\u001b[2J\\n::error::forged os-extension');
  expect(md).toContain('- evil\\u001b[2J\\n::error::forged on x86_64: no package matches a\\u009bb');
});
