import type { ExtensionKind } from '../inputs/extensions-yaml.js';

/** One extension as it will be resolved on one architecture. */
export interface PlannedExtension {
  name: string;
  kind: ExtensionKind;
  /** Package specs as written in extensions.yaml. */
  requested: string[];
  matchBaseEvr?: string;
  /** Specs handed to dnf: `name-[epoch:]version-release` when pinned with match-base-evr, else as written. */
  specs: string[];
  /** Repo ids this extension resolves from: the global ones plus its own. */
  repos: string[];
}

/** Everything that determines one architecture's result, apart from the base and repo contents. */
export interface ArchPlan {
  arch: string;
  releasever: string;
  weakDeps: boolean;
  /** Union of the repo ids of all applicable extensions, sorted. */
  repos: string[];
  /** Extensions that apply to this architecture, in file order. */
  extensions: PlannedExtension[];
}
