// `compose-extensions publish` and `merge`: the action's image publishing for other CI systems and
// by hand. Flags in, the functions the action calls (src/publish/images.ts), text or JSON out.
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { selectArches } from '../inputs/arch.js';
import { composedArches } from '../publish/output-dir.js';
import { parseLabels, pushImages, pushIndex, type RegistryInputs } from '../publish/images.js';
import { describeHolder, lockDirs } from '../repo/lock.js';
import type { Io } from './main.js';

/** The flags these commands read (a subset of the CLI's parsed options). */
export interface PublishArgs {
  output?: string;
  image?: string;
  tag?: string[];
  label?: string[];
  arch?: string[];
  source?: string;
  revision?: string;
  authfile?: string;
  'registry-username'?: string;
  'registry-password-stdin'?: boolean;
  'skip-unchanged'?: boolean;
  'wait-lock'?: boolean;
  json?: boolean;
}

export interface PublishContext {
  tlsVerify: boolean;
  /** The password from standard input: credentials never come from argv. */
  readSecret(): Promise<string>;
}

/** The registry flags, checked before anything is read or pushed, in the CLI's own words. */
function checkRegistryFlags(args: PublishArgs): void {
  if (!args.image) throw new UsageError('--image is required: the repository to push to, without a tag (e.g. ghcr.io/my-org/extensions)');
  const username = args['registry-username'];
  const fromStdin = Boolean(args['registry-password-stdin']);
  if (fromStdin && !username) throw new UsageError('--registry-password-stdin needs --registry-username');
  if (username && !fromStdin) throw new UsageError('--registry-username needs --registry-password-stdin (the password is read from stdin, never from the command line)');
  if (username && args.authfile) throw new UsageError('use --authfile or --registry-username with --registry-password-stdin, not both');
}

async function registryInputs(args: PublishArgs, io: Io, context: PublishContext): Promise<RegistryInputs> {
  const username = args['registry-username'];
  const fromStdin = Boolean(args['registry-password-stdin']);
  const password = fromStdin ? await context.readSecret() : undefined;
  if (fromStdin && !password) throw new UsageError('--registry-password-stdin: standard input was empty');
  return {
    image: args.image,
    tags: args.tag?.length ? args.tag : ['latest'],
    labels: parseLabels((args.label ?? []).join('\n')),
    registryUsername: username,
    registryPassword: password,
    authFile: args.authfile ? resolve(args.authfile) : undefined,
    skipUnchanged: Boolean(args['skip-unchanged']),
    tlsVerify: context.tlsVerify,
    source: args.source,
    revision: args.revision,
    log: (m) => io.err(m),
  };
}

/** publish: push each architecture of a compose output directory as `IMAGE:TAG-ARCH`. */
export async function publishCommand(args: PublishArgs, io: Io, context: PublishContext): Promise<number> {
  if (!args.output) throw new UsageError('--output is required: the directory compose wrote (<output>/<arch>/)');
  checkRegistryFlags(args);
  const only = args.arch?.length ? selectArches(args.arch, '--arch') : [];
  const output = resolve(args.output);
  await composedArches(output, only); // a missing or empty output is a usage error before any lock
  const inputs = await registryInputs(args, io, context);
  // The compose lock: no run may swap the output while its images are pushed.
  const locks = await lockDirs([{ dir: output, what: `the output directory ${output}` }], Boolean(args['wait-lock']),
    (what, holder) => io.err(`waiting for ${what}, locked by ${describeHolder(holder)}`));
  let images: Awaited<ReturnType<typeof pushImages>>;
  try {
    images = await pushImages(await composedArches(output, only), inputs);
  } finally {
    await locks.release();
  }
  const changed = images.some((i) => i.changed);
  if (args.json) {
    io.out(JSON.stringify({ ok: true, changed, images }, null, 2));
  } else {
    for (const i of images) io.out(`${i.arch}: ${i.ref}${i.changed ? ` (${i.tags.join(', ')})` : ' (unchanged, nothing pushed)'}`);
  }
  return 0;
}

/** merge: one image index under the plain tags over the `TAG-ARCH` images that publish pushed. */
export async function mergeCommand(args: PublishArgs, io: Io, context: PublishContext): Promise<number> {
  if (!args.arch?.length) throw new UsageError('merge needs --arch for each architecture that was published (repeatable)');
  const arches = selectArches(args.arch, '--arch');
  checkRegistryFlags(args);
  const inputs = await registryInputs(args, io, context);
  const index = await pushIndex(arches, inputs);
  if (args.json) {
    io.out(JSON.stringify({ ok: true, changed: index.changed, index }, null, 2));
  } else {
    io.out(`${index.ref}${index.changed ? ` (${index.tags.join(', ')})` : ' (unchanged, nothing pushed)'}`);
  }
  return 0;
}
