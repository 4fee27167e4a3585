import { UsageError } from '../errors.js';
import { parseLabels, parseUpload, publishComposed } from './publish.js';

test('upload: artifact, oci, both or none (the default)', () => {
  expect(parseUpload('')).toBe('none');
  expect(parseUpload(' both ')).toBe('both');
  expect(() => parseUpload('registry')).toThrow(UsageError);
});

test('labels: key=value lines; values keep = and #', () => {
  expect(parseLabels('\n# team labels\norg.example.team = os\nurl=https://x.example/a=b#c\n')).toEqual({
    'org.example.team': 'os',
    url: 'https://x.example/a=b#c',
  });
  expect(() => parseLabels('novalue')).toThrow(/not key=value/);
  expect(() => parseLabels('=x')).toThrow(UsageError);
});

test('labels: keys and values that would corrupt the image metadata or the log are refused', () => {
  expect(() => parseLabels('org.example team=x')).toThrow('labels: invalid key "org.example team": use letters, digits and . _ - / (like org.example.team)');
  expect(() => parseLabels('a\u001b[2J=x')).toThrow('labels: invalid key "a\\u001b[2J": use letters, digits and . _ - / (like org.example.team)');
  expect(() => parseLabels('team=o\rs')).toThrow('labels: the value of team holds a control character: "o\\rs"');
  expect(() => parseLabels('team=\u009b31m')).toThrow('labels: the value of team holds a control character: "\\u009b31m"');
  const labels = parseLabels('__proto__=x\nconstructor=y\n');
  expect(Object.entries(labels)).toEqual([['__proto__', 'x'], ['constructor', 'y']]);
});

test('pushing needs an image and a tag; none does nothing at all', async () => {
  const arch = { arch: 'x86_64', outputDir: '/nonexistent', stateChecksum: 'sha256:0' };
  await expect(publishComposed([arch], { upload: 'oci', tags: ['latest'] })).rejects.toThrow(/image is required/);
  await expect(publishComposed([arch], { upload: 'oci', image: 'ghcr.io/org/ext', tags: [] })).rejects.toThrow(/at least one tag/);
  expect(await publishComposed([arch], { upload: 'none', tags: [] })).toEqual({ artifacts: [], images: [], outputs: {} });
});
