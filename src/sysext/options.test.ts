import { UsageError } from '../errors.js';
import type { ExtensionsConfig } from '../inputs/extensions-yaml.js';
import { checkSysextNames, parseSysext } from './options.js';

test('sysext values', () => {
  expect(parseSysext(undefined, undefined, '--sysext')).toBeUndefined();
  expect(parseSysext('false', undefined, 'sysext')).toBeUndefined();
  expect(parseSysext('', undefined, '--sysext')).toEqual({ extensions: true });
  expect(parseSysext('true', 'squashfs', 'sysext')).toEqual({ extensions: true, format: 'squashfs' });
  expect(parseSysext('a, b\nc', undefined, 'sysext')).toEqual({ extensions: ['a', 'b', 'c'] });
  expect(parseSysext('true', undefined, 'sysext', 'https://h/x/${arch}')).toEqual({ extensions: true, url: 'https://h/x/${arch}' });
  expect(() => parseSysext('true', undefined, '--sysext', 'ftp://h')).toThrow(new UsageError('--sysext-url must be an http(s) URL, not "ftp://h"'));
  expect(parseSysext('true', undefined, 'sysext', undefined, 'scriptlet,\nkmod')).toEqual({ extensions: true, strict: ['scriptlet', 'kmod'] });
  expect(() => parseSysext('true', undefined, '--sysext', undefined, 'shadow,scripts')).toThrow(new UsageError('--sysext-strict takes shadow, scriptlet, sysusers, kmod, not "scripts"'));
  expect(parseSysext('true', 'squashfs', 'sysext', undefined, undefined, { compression: 'zstd', anyId: true })).toEqual({ extensions: true, format: 'squashfs', compression: 'zstd', anyId: true });
  expect(() => parseSysext('true', undefined, '--sysext', undefined, undefined, { compression: 'zstd' })).toThrow(new UsageError('--sysext-compression for erofs must be one of lz4, lz4hc, not "zstd"'));
  expect(() => parseSysext('true', 'zip', '--sysext')).toThrow(new UsageError('--sysext-format must be one of erofs, squashfs, not "zip"'));
});

test('listed names must be os-extensions of the file', () => {
  const config = { file: 'e.yaml', extensions: [{ name: 'a', kind: 'os-extension' }, { name: 'd', kind: 'development' }] } as ExtensionsConfig;
  expect(() => checkSysextNames(config, { extensions: ['a'] })).not.toThrow();
  const err = (() => { try { checkSysextNames(config, { extensions: ['a', 'x', 'd'] }); } catch (e) { return e as UsageError; } })();
  expect(err?.lines).toEqual([
    'sysext: "x" is not an extension of e.yaml',
    'sysext: "d" is a development extension; only os-extensions become system extension images',
  ]);
});
