// The root filesystem that image layers (or one rootfs tarball) make, read without unpacking it.
// Pass 1 indexes every layer's entries in order, applying OCI whiteouts; pass 2 extracts only the
// files readTree asks for, each from the layer that holds its final version.
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { readTar, plainOrGzip } from '../tools/tar.js';
import { readTree, type Tree } from './tree.js';
import type { ReadOptions } from './types.js';

interface Source {
  layer: number;
  /** The entry's position in that layer's tar (a path may occur more than once: the last one counts). */
  index: number;
}

interface Node {
  type: 'file' | 'dir' | 'symlink' | 'other';
  target?: string;
  source?: Source;
  children?: Map<string, Node>;
}

const OPAQUE = '.wh..wh..opq';
const WHITEOUT = '.wh.';

const dirNode = (): Node => ({ type: 'dir', children: new Map() });

/** Path components without `.`, empty parts or a leading `/`; undefined for `..` (never followed) or the root itself. */
export function normaliseEntryPath(path: string): string[] | undefined {
  const parts = path.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.length === 0 || parts.includes('..')) return undefined;
  return parts;
}

function lookup(root: Node, parts: string[]): Node | undefined {
  let node: Node | undefined = root;
  for (const c of parts) {
    node = node?.children?.get(c);
    if (!node) return undefined;
  }
  return node;
}

/** The directory at `parts`, created (replacing a non-directory, as a later layer would) when needed. */
function ensureDir(root: Node, parts: string[]): Node {
  let node = root;
  for (const c of parts) {
    let next = node.children!.get(c);
    if (next?.type !== 'dir') {
      next = dirNode();
      node.children!.set(c, next);
    }
    node = next;
  }
  return node;
}

function put(root: Node, parts: string[], node: Node): void {
  const parent = ensureDir(root, parts.slice(0, -1));
  const name = parts[parts.length - 1]!;
  // A repeated directory entry keeps what was already put under it.
  if (node.type === 'dir' && parent.children!.get(name)?.type === 'dir') return;
  parent.children!.set(name, node);
}

/** Puts a layer's own tree over the accumulated one: directories merge, anything else replaces. */
function merge(into: Node, layer: Node): void {
  for (const [name, node] of layer.children!) {
    const existing = into.children!.get(name);
    if (node.type === 'dir' && existing?.type === 'dir') merge(existing, node);
    else into.children!.set(name, node);
  }
}

export class LayeredTree implements Tree {
  private constructor(
    private readonly root: Node,
    private readonly layers: string[],
    private readonly scratch: string,
  ) {}

  /**
   * Indexes `layers` (tar files, lowest first; gzip, zstd or plain). zstd layers are decompressed
   * once into `scratch`, which the caller removes.
   */
  static async index(layers: string[], scratch: string): Promise<LayeredTree> {
    await mkdir(scratch, { recursive: true });
    const plain: string[] = [];
    for (const [i, layer] of layers.entries()) plain.push((await plainOrGzip(layer, join(scratch, `layer-${i}.tar`))).file);
    const root = dirNode();
    for (const [i, file] of plain.entries()) await indexLayer(root, i, file, scratch);
    return new LayeredTree(root, plain, scratch);
  }

  // Arrow properties: readTree passes these around unbound.
  lstat = async (rel: string) => {
    const node = lookup(this.root, normaliseEntryPath(rel) ?? []);
    return node && { type: node.type, target: node.target };
  };

  isEmptyDir = async (rel: string) => {
    return (lookup(this.root, normaliseEntryPath(rel) ?? [])?.children?.size ?? 0) === 0;
  };

  read = async (rel: string): Promise<string> => {
    const node = lookup(this.root, normaliseEntryPath(rel) ?? []);
    if (node?.type !== 'file' || !node.source) throw new Error(`${rel} is not a regular file in the image`);
    const dir = await mkdtemp(join(this.scratch, 'read-'));
    try {
      const dest = join(dir, 'file');
      await this.extract(new Map([[node.source.layer, new Map([[node.source.index, [dest]]])]]));
      return await readFile(dest, 'utf8');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  /** Writes the directory's final contents to `dest`: directories, symlinks verbatim, files. */
  copyDir = async (rel: string, dest: string): Promise<void> => {
    const top = lookup(this.root, normaliseEntryPath(rel) ?? []);
    if (top?.type !== 'dir') throw new Error(`${rel} is not a directory in the image`);
    const wanted = new Map<number, Map<number, string[]>>();
    const walk = async (node: Node, to: string): Promise<void> => {
      await mkdir(to, { recursive: true });
      for (const [name, child] of node.children!) {
        const path = join(to, name);
        if (child.type === 'dir') await walk(child, path);
        else if (child.type === 'symlink') await symlink(child.target!, path);
        else if (child.type === 'file' && child.source) {
          const byIndex = wanted.get(child.source.layer) ?? new Map<number, string[]>();
          wanted.set(child.source.layer, byIndex);
          byIndex.set(child.source.index, [...(byIndex.get(child.source.index) ?? []), path]);
        }
      }
    };
    await walk(top, dest);
    await this.extract(wanted);
  };

  /**
   * One pass over each layer that holds a wanted file (layer → entry index → destinations), up to
   * its last wanted entry; hardlinked copies are copied afterwards.
   */
  private async extract(wanted: Map<number, Map<number, string[]>>): Promise<void> {
    for (const [layer, byIndex] of [...wanted].sort(([a], [b]) => a - b)) {
      await readTar(this.layers[layer]!, (entry) => (entry.type === 'file' ? byIndex.get(entry.index)?.[0] : undefined), {
        scratch: join(this.scratch, 'unused.tar'),
        limit: Math.max(...byIndex.keys()) + 1,
      });
      for (const dests of byIndex.values()) for (const extra of dests.slice(1)) await copyFile(dests[0]!, extra);
    }
  }
}

async function indexLayer(root: Node, layer: number, file: string, scratch: string): Promise<void> {
  const own = dirNode();
  const whiteouts: string[][] = [];
  const opaque: string[][] = [];
  await readTar(
    file,
    (entry) => {
      const parts = normaliseEntryPath(entry.path);
      if (!parts) return undefined;
      const name = parts[parts.length - 1]!;
      const parent = parts.slice(0, -1);
      if (name === OPAQUE) {
        opaque.push(parent);
        ensureDir(own, parent);
      } else if (name.startsWith(WHITEOUT + WHITEOUT)) {
        // other AUFS metadata (.wh..wh.plnk…): not part of the tree
      } else if (name.startsWith(WHITEOUT)) {
        whiteouts.push([...parent, name.slice(WHITEOUT.length)]);
      } else if (entry.type === 'hardlink') {
        // The link's source comes earlier in this layer or from a lower one.
        const target = normaliseEntryPath(entry.linkname);
        const source = target && (lookup(own, target) ?? lookup(root, target));
        if (source?.type === 'file') put(own, parts, { type: 'file', source: source.source });
      } else if (entry.type === 'file') {
        put(own, parts, { type: 'file', source: { layer, index: entry.index } });
      } else if (entry.type === 'dir') {
        put(own, parts, dirNode());
      } else if (entry.type === 'symlink') {
        put(own, parts, { type: 'symlink', target: entry.linkname });
      } else {
        put(own, parts, { type: 'other' });
      }
      return undefined;
    },
    { scratch: join(scratch, 'unused.tar') },
  );
  // Whiteouts hide what lower layers had; this layer's own entries then go on top.
  for (const path of whiteouts) lookup(root, path.slice(0, -1))?.children?.delete(path[path.length - 1]!);
  for (const path of opaque) {
    const dir = lookup(root, path);
    if (dir?.type === 'dir') dir.children = new Map();
  }
  merge(root, own);
}

/** os-release, packages and a private rpmdb copy from layers applied in order. */
export async function readLayers(layers: string[], where: string, workDir: string, read: ReadOptions = {}) {
  const scratch = join(workDir, 'layers');
  try {
    const tree = await LayeredTree.index(layers, scratch);
    return await readTree(tree, where, workDir, read);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
