import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ownedStem, removeDeadScratch, scratchDir } from './leftovers.js';

let parent: string;
beforeEach(async () => {
  parent = await mkdtemp(join(tmpdir(), 'ce-leftovers-test-'));
});
afterEach(async () => {
  await rm(parent, { recursive: true, force: true });
});

/** The pid of a process that has exited: what a SIGKILLed run leaves in its names. */
async function deadPid(): Promise<number> {
  const child = execa('true');
  await child;
  return child.pid!;
}

test('a scratch directory names its owner and step; the next run removes a dead owner\'s, never a live one\'s', async () => {
  const mine = await scratchDir('push', parent);
  expect(basename(mine)).toMatch(new RegExp(`^${ownedStem('compose-extensions-tmp-')}push-\\w{6}$`));
  const dead = join(parent, `${ownedStem('compose-extensions-tmp-', await deadPid())}image-x86_64-abcdef`);
  await mkdir(join(dead, 'blobs', 'sha256'), { recursive: true });
  // pid 1 is alive (and on this host): its scratch stays, as does anything not named by us.
  const live = join(parent, `${ownedStem('compose-extensions-tmp-', 1)}index-abcdef`);
  const other = join(parent, 'ce-push-unrelated');
  await Promise.all([mkdir(live), mkdir(other)]);

  expect(await removeDeadScratch(parent)).toEqual([dead]);
  expect((await readdir(parent)).sort()).toEqual([basename(mine), basename(live), basename(other)].sort());
});
