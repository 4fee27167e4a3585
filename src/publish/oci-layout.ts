// Writing and reading an OCI image layout (image-spec layout.md): content-addressed blobs under
// blobs/sha256/ and an index.json naming the images by `org.opencontainers.image.ref.name`.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '../tools/skopeo.js';

export const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export const REF_NAME = 'org.opencontainers.image.ref.name';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}


const blobPath = (layout: string, digest: string): string => join(layout, 'blobs', ...digest.split(':'));

export async function initLayout(layout: string): Promise<void> {
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}

/** Stores bytes as a blob; the JSON documents we write are compact, so their digest is of exactly these bytes. */
export async function putBlob(layout: string, mediaType: string, bytes: Buffer | string): Promise<Descriptor> {
  const digest = digestOf(bytes);
  await writeFile(blobPath(layout, digest), bytes);
  return { mediaType, digest, size: Buffer.byteLength(bytes) };
}

/** Moves a file (on the same filesystem as the layout) into the blob store. */
export async function moveBlob(layout: string, mediaType: string, file: string, size: number): Promise<Descriptor> {
  const digest = await sha256File(file);
  await rename(file, blobPath(layout, digest));
  return { mediaType, digest, size };
}

export async function readBlob(layout: string, digest: string): Promise<Buffer> {
  return readFile(blobPath(layout, digest));
}

/** index.json: each descriptor tagged with its ref name, for `oci:LAYOUT:NAME` references. */
export async function writeIndex(layout: string, entries: { ref: string; descriptor: Descriptor }[]): Promise<void> {
  const manifests = entries.map(({ ref, descriptor }) => ({
    ...descriptor,
    annotations: { ...descriptor.annotations, [REF_NAME]: ref },
  }));
  await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.index, manifests }));
}
