// Which client fetches a repo's files: our own (fast, parallel, content-addressed) only where a
// repo needs nothing but plain URLs; dnf's own downloader (librepo) for everything else, so that
// mirrors, proxies, certificates and credentials behave exactly as the user's dnf would have them.
import { expandVars, type RepoDefinition } from '../inputs/repos.js';

export type FetchRoute = 'direct' | 'dnf';

/**
 * .repo options that change nothing about how a file is fetched. Any other option (proxy, ssl*,
 * username, timeout, minrate, throttle, max_parallel_downloads, metalink, mirrorlist…) or one we do
 * not know sends the repo to dnf's downloader: an unknown option must never be silently ignored.
 */
const TRANSFER_NEUTRAL = new Set([
  'name', 'baseurl', 'enabled', 'gpgcheck', 'gpgkey', 'repo_gpgcheck', 'localpkg_gpgcheck', 'skip_if_unavailable',
  'metadata_expire', 'priority', 'cost', 'exclude', 'excludepkgs', 'includepkgs', 'module_hotfixes', 'type',
  'countme', 'enabled_metadata', 'deltarpm', 'deltarpm_percentage', 'fastestmirror',
]);

/** The variables curl (and so librepo) reads for proxies; any of them set sends http(s) repos to dnf. */
export const PROXY_VARIABLES = ['http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY'];

/** baseurl and gpgkey hold one or more URLs, separated by commas or white space (as dnf reads them). */
export const urlList = (value: string | undefined): string[] => (value ?? '').split(/[\s,]+/).filter(Boolean);

/**
 * `direct` when our client fetches exactly what dnf would: only baseurls (no metalink/mirrorlist),
 * each plain http(s) or file without user-info once the repo variables are substituted, no option
 * that affects transfers in the repo or in dnf.conf's [main] (`main`), and no proxy in the
 * environment for http(s). `dnf` otherwise.
 */
export function fetchRoute(
  repo: RepoDefinition,
  env: Record<string, string | undefined> = process.env,
  vars: Record<string, string> = {},
  main: Record<string, string> = {},
): FetchRoute {
  if (Object.keys(main).length > 0) return 'dnf';
  if (Object.keys(repo.options).some((key) => !TRANSFER_NEUTRAL.has(key))) return 'dnf';
  const expand = (key: string) => urlList(expandVars(repo.options[key] ?? '', vars));
  const urls = [...expand('baseurl'), ...expand('gpgkey')];
  if (expand('baseurl').length === 0) return 'dnf';
  for (const url of urls) {
    const parsed = /^(https?|file):\/\/([^/?#]*)/.exec(url);
    if (!parsed || parsed[2]!.includes('@')) return 'dnf';
  }
  const remote = urls.some((u) => !u.startsWith('file:'));
  if (remote && PROXY_VARIABLES.some((v) => env[v])) return 'dnf';
  return 'direct';
}
