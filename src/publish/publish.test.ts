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

test('pushing needs an image and a tag; none does nothing at all', async () => {
  const arch = { arch: 'x86_64', outputDir: '/nonexistent', stateChecksum: 'sha256:0' };
  await expect(publishComposed([arch], { upload: 'oci', tags: ['latest'] })).rejects.toThrow(/image is required/);
  await expect(publishComposed([arch], { upload: 'oci', image: 'ghcr.io/org/ext', tags: [] })).rejects.toThrow(/at least one tag/);
  expect(await publishComposed([arch], { upload: 'none', tags: [] })).toEqual({ artifacts: [], images: [], outputs: {} });
});
