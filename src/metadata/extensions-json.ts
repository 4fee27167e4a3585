import type { ExtensionKind } from '../inputs/extensions-yaml.js';
import type { ArchPlan } from '../plan/types.js';
import { byString } from './state.js';

/*
 * rpm-ostree's extensions.json, for consumers of `rpm-ostree compose extensions` output. Defined by
 * the serde structs `Extensions`/`Extension` in coreos/rpm-ostree rust/src/extensions.rs
 * (kebab-case keys, None fields skipped) and written by `Extensions::serialize_to_dir` with
 * serde_json::to_writer_pretty. It is the arch-filtered extensions.yaml, with match-base-evr
 * already applied to `packages`, and per-extension repos moved into the top-level list; it names
 * no resolved packages, and development extensions are included like the others.
 */

export interface RpmOstreeExtension {
  /** Specs as handed to the solver (pinned when match-base-evr is set). */
  packages: string[];
  /** Only when extensions.yaml restricts the extension to some architectures. */
  architectures?: string[];
  'match-base-evr'?: string;
  kind: ExtensionKind;
}

export interface RpmOstreeExtensionsJson {
  extensions: Record<string, RpmOstreeExtension>;
  /** Global and per-extension repo ids; absent when there are none. */
  repos?: string[];
}

/**
 * `architectures` (extension name → its `architectures:` list from extensions.yaml) is needed only
 * to reproduce that field; the plan does not carry it.
 */
export function buildExtensionsJson(
  plan: ArchPlan,
  architectures: Readonly<Record<string, readonly string[] | undefined>> = {},
): RpmOstreeExtensionsJson {
  // rpm-ostree iterates a HashMap (random order, repos repeated); we sort and dedupe instead.
  const extensions = [...plan.extensions].sort((a, b) => byString(a.name, b.name));
  const repos = [...new Set(extensions.flatMap((e) => e.repos))].sort(byString);
  return {
    extensions: Object.fromEntries(
      extensions.map((e) => {
        const arches = architectures[e.name];
        const ext: RpmOstreeExtension = {
          packages: [...e.specs],
          ...(arches && { architectures: [...arches] }),
          ...(e.matchBaseEvr !== undefined && { 'match-base-evr': e.matchBaseEvr }),
          kind: e.kind,
        };
        return [e.name, ext];
      }),
    ),
    ...(repos.length > 0 && { repos }),
  };
}

/** Same bytes serde_json::to_writer_pretty gives: 2-space indent, no trailing newline. */
export function serializeExtensionsJson(doc: RpmOstreeExtensionsJson): string {
  return JSON.stringify(doc, null, 2);
}
