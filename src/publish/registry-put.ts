// One manifest PUT straight to a registry (distribution-spec), for what skopeo cannot push: an
// index whose descriptors carry `artifactType` (skopeo 1.9's containers/image re-serialises an
// index without that field, which breaks the digest). Credentials come from the same auth file
// skopeo is given and stay in memory; a token is asked for only over https (or loopback).
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ToolError } from '../errors.js';
import { isLoopback } from '../tools/skopeo.js';
import type { Repository } from '../tools/skopeo.js';
import type { RegistryOptions } from '../tools/skopeo.js';

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function send(url: URL, method: string, headers: Record<string, string>, body: string | undefined, tlsVerify: boolean): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const req = request(url, { method, headers, timeout: 60_000, ...(url.protocol === 'https:' && { rejectUnauthorized: tlsVerify }) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= 1 << 20) chunks.push(c); // a reply is small; never buffer more
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url.origin}: no answer in 60 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The registry's API host and the repository path in it. */
export function registryEndpoint(image: Repository): { host: string; path: string } {
  const rest = image.name.startsWith(`${image.registry}/`) ? image.name.slice(image.registry.length + 1) : image.name;
  if (image.registry === 'docker.io') return { host: 'registry-1.docker.io', path: rest.includes('/') ? rest : `library/${rest}` };
  return { host: image.registry, path: rest };
}

/** Where skopeo looks without --authfile (containers-auth.json(5)), in its order. */
export function defaultAuthFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env['HOME'] ?? homedir();
  return [
    env['REGISTRY_AUTH_FILE'],
    env['XDG_RUNTIME_DIR'] && join(env['XDG_RUNTIME_DIR'], 'containers', 'auth.json'),
    join(env['XDG_CONFIG_HOME'] || join(home, '.config'), 'containers', 'auth.json'),
    join(home, '.docker', 'config.json'),
  ].filter((f): f is string => Boolean(f));
}

/** The base64 `user:password` for the registry from the auth file skopeo uses (credential helpers are not asked). */
async function basicCredentials(registry: string, authFile: string | undefined): Promise<string | undefined> {
  for (const file of authFile ? [authFile] : defaultAuthFiles()) {
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    const auths = (JSON.parse(text) as { auths?: Record<string, { auth?: string }> }).auths ?? {};
    const found = auths[registry]?.auth ?? auths[`https://${registry}`]?.auth;
    if (found || authFile) return found;
  }
  return undefined;
}

/** `Bearer realm="…",service="…",scope="…"` → its parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const [scheme = '', ...rest] = header.trim().split(/\s+/);
  const params: Record<string, string> = {};
  for (const m of rest.join(' ').matchAll(/(\w+)="([^"]*)"/g)) params[m[1]!.toLowerCase()] = m[2]!;
  return { scheme: scheme.toLowerCase(), params };
}

/** PUTs a manifest at a tag; returns the digest the registry reports. */
export async function putManifest(image: Repository, tag: string, mediaType: string, body: string, access: RegistryOptions): Promise<string> {
  const { host, path } = registryEndpoint(image);
  const loopback = isLoopback(image.registry);
  const tlsVerify = access.tlsVerify !== false && !loopback;
  // Loopback registries are plain http here, as skopeo reaches them with --tls-verify=false.
  const url = new URL(`${loopback ? 'http' : 'https'}://${host}/v2/${path}/manifests/${tag}`);
  const headers = { 'Content-Type': mediaType };
  const where = `${image.name}:${tag}`;
  let reply = await send(url, 'PUT', headers, body, tlsVerify);
  if (reply.status === 401) {
    const basic = await basicCredentials(image.registry, access.authFile);
    const challenge = parseChallenge(String(reply.headers['www-authenticate'] ?? ''));
    let authorization: string | undefined;
    if (challenge.scheme === 'bearer' && challenge.params['realm']) {
      const realm = new URL(challenge.params['realm']);
      if (realm.protocol !== 'https:' && !isLoopback(realm.host)) throw new ToolError(`pushing to ${where} failed: the registry asks for credentials over ${realm.protocol}`);
      if (challenge.params['service']) realm.searchParams.set('service', challenge.params['service']);
      realm.searchParams.set('scope', `repository:${path}:pull,push`);
      const token = await send(realm, 'GET', basic ? { Authorization: `Basic ${basic}` } : {}, undefined, tlsVerify);
      if (token.status !== 200) throw new ToolError(`pushing to ${where} failed: the token service answered ${token.status}`);
      const t = JSON.parse(token.body) as { token?: string; access_token?: string };
      authorization = `Bearer ${t.token ?? t.access_token ?? ''}`;
    } else if (challenge.scheme === 'basic' && basic) {
      authorization = `Basic ${basic}`;
    }
    if (authorization) reply = await send(url, 'PUT', { ...headers, Authorization: authorization }, body, tlsVerify);
  }
  if (reply.status !== 201 && reply.status !== 200) {
    throw new ToolError(`pushing to ${where} failed: ${reply.status} ${reply.body.slice(0, 300).trim()}`);
  }
  return String(reply.headers['docker-content-digest'] ?? '');
}
