import { existsSync, readFileSync } from 'node:fs';
import { withBaseRegistry } from './base-spec.js';
import type { BaseSpec } from './types.js';

describe('withBaseRegistry', () => {
  test('the auth file lives until release(), which the compose calls once the bases are read; release is idempotent', async () => {
    const spec: BaseSpec = { kind: 'image', ref: 'registry.example/acme/base:1' };
    let seen = '';
    const result = await withBaseRegistry(spec, { username: 'u', password: 'p4ss' }, async (base, release) => {
      seen = base.kind === 'image' ? base.registry?.authFile ?? '' : '';
      expect(readFileSync(seen, 'utf8')).toContain(Buffer.from('u:p4ss').toString('base64'));
      await release();
      expect(existsSync(seen)).toBe(false); // the rest of the run (downloads, repo, publish) runs without it
      await release();
      return 'done';
    });
    expect(result).toBe('done');
    expect(seen).not.toBe('');
  });

  test('a failing run removes it too', async () => {
    let seen = '';
    await expect(withBaseRegistry({ kind: 'image', ref: 'registry.example/acme/base:1' }, { username: 'u', password: 'p4ss' }, async (base) => {
      seen = base.kind === 'image' ? base.registry?.authFile ?? '' : '';
      throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(existsSync(seen)).toBe(false);
  });
});
