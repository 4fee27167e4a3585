// Download failures in few words: one line per repo and cause, naming the mirrors tried and the
// last error of each, instead of one identical line per package (hundreds on a real repo).
import type { ComposeProblem } from '../errors.js';
import { redactUrl, redactUrls } from '../tools/redact.js';

/** One mirror's last word on a package. */
export interface MirrorAttempt {
  /** The mirror's base URL (user-info removed when shown). */
  mirror: string;
  reason: string;
}

export interface PackageFailure {
  nevra: string;
  repo: string;
  /** Every mirror tried, in order, with its last error; empty when no mirror was reached at all. */
  attempts: MirrorAttempt[];
  /** Why it failed when it is not one mirror's fault (e.g. no mirror at all). */
  reason?: string;
}

/** `host:port/path` of a mirror: enough to tell mirrors apart, short enough to list several. */
export function mirrorLabel(url: string): string {
  const clean = redactUrl(url);
  try {
    const parsed = new URL(clean);
    if (parsed.protocol === 'file:') return parsed.pathname.replace(/\/+$/, '');
    return `${parsed.host}${parsed.pathname.replace(/\/+$/, '')}`;
  } catch {
    return clean;
  }
}

const SHOWN = 3;

function listed(items: string[]): string {
  const shown = items.slice(0, SHOWN).join(', ');
  return items.length > SHOWN ? `${shown} and ${items.length - SHOWN} more` : shown;
}

/** One problem per repo and cause (the same mirrors with the same errors), packages listed briefly. */
export function summarizeFailures(failures: PackageFailure[], arch: string): ComposeProblem[] {
  const groups = new Map<string, { repo: string; cause: string; nevras: string[] }>();
  for (const f of failures) {
    const tried = f.attempts.length;
    const cause = tried > 0
      ? `${tried} mirror${tried === 1 ? '' : 's'} tried: ${f.attempts.map((a) => `${mirrorLabel(a.mirror)} ${a.reason}`).join(', ')}`
      : (f.reason ?? 'no mirror to fetch it from');
    const key = JSON.stringify([f.repo, cause]);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { repo: f.repo, cause, nevras: [] }));
    group.nevras.push(f.nevra);
  }
  return [...groups.values()].map((g) => ({
    arch,
    message: redactUrls(`repo ${g.repo}: ${g.cause}; ${g.nevras.length === 1 ? `package ${g.nevras[0]}` : `${g.nevras.length} packages (${listed(g.nevras)})`} not fetched`),
  }));
}

/** curl's error numbers librepo reports, in the words our own client uses for the same failure. */
const CURL_REASONS: Record<string, string> = {
  '5': 'could not resolve the proxy',
  '6': 'could not resolve the host',
  '7': 'could not connect',
  '28': 'timed out',
  '35': 'TLS handshake failed',
  '51': 'TLS certificate does not match the host',
  '52': 'empty reply',
  '56': 'connection broken while receiving',
  '58': 'client certificate rejected or unreadable',
  '60': 'TLS certificate not trusted',
  '77': 'TLS CA certificate unreadable',
  '97': 'proxy handshake failed',
};

/** librepo's message for one mirror's failure, in our words (its own text where we have none). */
export function librepoReason(message: string): string {
  const status = /Status code: (\d{3})/.exec(message);
  if (status) return `HTTP ${status[1]}`;
  if (/checksum doesn't match|checksum mismatch/i.test(message)) return 'checksum mismatch';
  const curl = /Curl error \((\d+)\): ([^\n[]*?)(?: for \S+)?(?: \[(.*)\])?$/.exec(message.trim());
  if (curl) {
    const detail = curl[3] ?? curl[2] ?? '';
    const proxyStatus = /Received HTTP code (\d{3}) from proxy/.exec(detail);
    if (proxyStatus) return `proxy answered HTTP ${proxyStatus[1]}`;
    return CURL_REASONS[curl[1]!] ?? detail.trim();
  }
  return redactUrls(message.replace(/ for (?:https?|ftp|file):\/\/\S+/g, '').trim());
}

/** The mirror a failed package URL belongs to: the URL without the package's location. */
export function mirrorOf(url: string, location: string): string {
  return url.endsWith(location) ? url.slice(0, url.length - location.length) : url;
}
