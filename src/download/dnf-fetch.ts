// Adapter around dnf's own downloader: the dnf helper program in a process of its own (downloads
// hold its interpreter, and must not stall the solves), asked to fetch packages, gpg keys or a
// repo's current repomd.xml with every option of the user's .repo file, as their dnf would.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ToolError } from '../errors.js';
import { HelperPool, repoRequest, type RepoContext } from '../solve/helper.js';
import type { DnfBackend } from '../tools/dnf-python.js';
import { lastLines } from '../tools/exec.js';
import { redactUrls } from '../tools/redact.js';

export interface DnfPackageItem {
  repo: string;
  location: string;
  checksum: { type: string; value: string };
  size: number;
  /** The file librepo writes. */
  dest: string;
}

/** librepo's word on one package: every mirror that failed it, and whether one succeeded. */
export interface DnfPackageAnswer {
  ok: boolean;
  error?: string | null;
  failures: { url: string; message: string }[];
}

export interface DnfRepomd {
  id: string;
  repomdSha256?: string;
  error?: string;
}

/**
 * dnf's downloader, one process per architecture downloading at once (up to `processes`): a
 * download holds its process's interpreter, and each architecture's packages come from its own
 * mirrors, so architectures wait for the network side by side, not one after another. Started only
 * when a repo needs it.
 */
export class DnfFetcher {
  private readonly pool: HelperPool;

  constructor(
    backend: DnfBackend,
    /** Scratch directory of the run. */
    workDir: string,
    processes = 1,
  ) {
    this.pool = new HelperPool(backend, join(workDir, 'dnf-fetch-home'), { helpers: processes, threads: 1 });
  }

  private async ask(ctx: RepoContext, request: object): Promise<Record<string, unknown>> {
    const root = join(ctx.workDir, 'root'); // dnf wants an installroot; nothing is installed or read there
    await mkdir(root, { recursive: true });
    const input = { ...(await repoRequest(ctx)), installroot: root, weakDeps: false, ...request };
    const answer = (await this.pool.ask(ctx.arch, input)) as Record<string, unknown>;
    const error = answer['error'];
    if (typeof error === 'string') throw new ToolError(`dnf's downloader failed on ${ctx.arch}: ${redactUrls(lastLines(error))}`);
    return answer;
  }

  async packages(ctx: RepoContext, items: DnfPackageItem[]): Promise<DnfPackageAnswer[]> {
    if (items.length === 0) return [];
    const answer = await this.ask(ctx, { op: 'packages', packages: items });
    return answer['packages'] as DnfPackageAnswer[];
  }

  /**
   * Each key fetched through its repo into `dest`, named by its index in the repo's gpgkey list
   * (the helper reads the URL, user-info included, from the .repo file); an error where that failed.
   */
  async keys(ctx: RepoContext, keys: { repo: string; index: number; dest: string }[]): Promise<{ ok: boolean; error?: string }[]> {
    if (keys.length === 0) return [];
    const answer = await this.ask(ctx, { op: 'keys', keys });
    return answer['keys'] as { ok: boolean; error?: string }[];
  }

  /** Each repo's repomd.xml as dnf finds it now (mirrors and metalink included). */
  async repomd(ctx: RepoContext): Promise<DnfRepomd[]> {
    const answer = await this.ask(ctx, { op: 'repomd' });
    return answer['repos'] as DnfRepomd[];
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
