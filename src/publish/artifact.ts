// Workflow artifacts: each architecture's output directory (RPMs, repodata/, extensions.json, SBOMs,
// metadata.json) as its own artifact `<name>-<arch>`, with the real @actions/artifact client.
import type { DefaultArtifactClient } from '@actions/artifact';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';

export const DEFAULT_ARTIFACT_NAME = 'extensions';

export interface ArtifactOptions {
  /** Artifact name prefix; the architecture is appended: `extensions-x86_64`. */
  name?: string;
  /** 1–90; default the repository's setting. */
  retentionDays?: number;
  /** For tests; default the real client. */
  client?: Pick<DefaultArtifactClient, 'uploadArtifact'>;
  env?: NodeJS.ProcessEnv;
}

export interface UploadedArtifact {
  arch: string;
  name: string;
  id: number;
  /** Where a person downloads it, as actions/upload-artifact reports it; empty outside a workflow run. */
  url: string;
  /** sha256 (hex) of the uploaded zip, as actions/upload-artifact reports it. */
  digest: string;
  size: number;
}

/** Every regular file below `dir`, sorted, for the artifact's zip. */
async function filesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

export function artifactName(prefix: string, arch: string): string {
  return `${prefix}-${arch}`;
}

export function parseRetentionDays(input: string): number | undefined {
  if (!input.trim()) return undefined;
  const days = Number(input);
  if (!Number.isInteger(days) || days < 1 || days > 90) throw new UsageError(`retention-days must be a whole number from 1 to 90, got "${input}"`);
  return days;
}

function artifactUrl(id: number, env: NodeJS.ProcessEnv): string {
  const { GITHUB_SERVER_URL: server = 'https://github.com', GITHUB_REPOSITORY: repo, GITHUB_RUN_ID: run } = env;
  return repo && run ? `${server}/${repo}/actions/runs/${run}/artifacts/${id}` : '';
}

/** The service answers a second artifact of one name in a run with 409 Conflict. */
const DUPLICATE = /\(409\)|already exists/i;

function duplicateError(name: string, prefix: string, arch: string): UsageError {
  return new UsageError(
    `an artifact named "${name}" already exists in this workflow run. Artifact names are per run, and the ` +
      `architecture is already part of the name, so another job composed ${arch} with the same artifact-name "${prefix}". ` +
      `In a matrix, give each job its own artifact-name, e.g. \`artifact-name: extensions-\${{ matrix.stream }}\` ` +
      `(giving ${artifactName(`extensions-stable`, arch)}), or compose each architecture in one job only.`,
  );
}

export async function uploadArtifacts(archDirs: { arch: string; dir: string }[], options: ArtifactOptions = {}): Promise<UploadedArtifact[]> {
  const prefix = options.name?.trim() || DEFAULT_ARTIFACT_NAME;
  if (/[":<>|*?\r\n\\/]/.test(prefix)) throw new UsageError(`artifact-name "${prefix}" may not contain any of " : < > | * ? \\ / or a line break`);
  const days = options.retentionDays;
  if (days !== undefined && !(Number.isInteger(days) && days >= 1 && days <= 90)) throw new UsageError(`retention-days must be a whole number from 1 to 90, got ${days}`);
  // Loaded only to upload: the client and the Azure SDK under it hold ~40 MiB that a compose without
  // artifacts, and the compose before an upload, do not need.
  const client = options.client ?? new (await import('@actions/artifact')).DefaultArtifactClient();
  const env = options.env ?? process.env;
  const uploaded: UploadedArtifact[] = [];
  // One after another: each upload already runs its blocks in parallel.
  for (const { arch, dir } of archDirs) {
    const name = artifactName(prefix, arch);
    const files = await filesBelow(dir);
    if (files.length === 0) throw new UsageError(`${dir} is empty: nothing to upload for ${arch}`);
    try {
      const result = await client.uploadArtifact(name, files, dir, {
        // RPMs and repodata are compressed already: zip them stored, not deflated again.
        compressionLevel: 0,
        ...(options.retentionDays !== undefined && { retentionDays: options.retentionDays }),
      });
      if (result.id === undefined) throw new Error(`the artifact service returned no id for ${name}`);
      uploaded.push({ arch, name, id: result.id, url: artifactUrl(result.id, env), digest: result.digest ?? '', size: result.size ?? 0 });
    } catch (err) {
      if (err instanceof Error && DUPLICATE.test(err.message)) throw duplicateError(name, prefix, arch);
      throw err;
    }
  }
  return uploaded;
}
