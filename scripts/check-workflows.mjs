#!/usr/bin/env node
// Validates GitHub workflows and action.yml against GitHub's own schemas, offline: the parser of
// @actions/workflow-parser (GitHub's Actions language service, with its workflow-v1.0 and
// action-v1.0 schemas), then its workflow conversion (job `needs`, expressions, matrix). Also checks
// that every `uses: ./` step passes only inputs that action.yml declares.
//
//   node scripts/check-workflows.mjs [FILE...]    (default: action.yml and .github/workflows/*.yml)
//
// A file named action.yml or action.yaml is an action's metadata; any other is a workflow. Prints
// each problem as `file (Line: L, Col: C): message`; exit 1 when there is one.
import { register } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

// The package imports its schema JSON without `with { type: 'json' }`, which Node's ESM loader
// refuses: add the attribute for .json files.
register(
  'data:text/javascript,' +
    encodeURIComponent(
      "export async function load(url, context, next) { return next(url, url.endsWith('.json') ? { ...context, importAttributes: { type: 'json' } } : context); }",
    ),
);
const { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } = await import('@actions/workflow-parser');
const { parseAction } = await import('@actions/workflow-parser/actions/action-parser');

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const isAction = (file) => /^action\.ya?ml$/.test(basename(file));

function defaultFiles() {
  const dir = join(ROOT, '.github/workflows');
  return [join(ROOT, 'action.yml'), ...readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(dir, f))];
}

/** Inputs a `uses: ./` step passes that action.yml does not declare. */
function unknownLocalInputs(file, text, actionInputs) {
  const problems = [];
  const doc = parse(text);
  for (const [jobId, job] of Object.entries(doc?.jobs ?? {})) {
    for (const [i, step] of (job?.steps ?? []).entries()) {
      if (step?.uses !== './') continue;
      for (const key of Object.keys(step.with ?? {})) {
        if (!actionInputs.has(key)) problems.push(`${file}: jobs.${jobId}.steps[${i}].with.${key}: action.yml has no input '${key}'`);
      }
    }
  }
  return problems;
}

async function check(file, actionInputs) {
  const content = readFileSync(file, 'utf8');
  const trace = new NoOperationTraceWriter();
  if (isAction(file)) {
    return parseAction({ name: file, content }, trace).context.errors.getErrors().map((e) => e.message);
  }
  const parsed = parseWorkflow({ name: file, content }, trace);
  if (parsed.value) await convertWorkflowTemplate(parsed.context, parsed.value);
  const problems = parsed.context.errors.getErrors().map((e) => e.message);
  return [...problems, ...unknownLocalInputs(file, content, actionInputs)];
}

const files = process.argv.length > 2 ? process.argv.slice(2) : defaultFiles();
const actionInputs = new Set(Object.keys(parse(readFileSync(join(ROOT, 'action.yml'), 'utf8')).inputs ?? {}));
let failed = false;
for (const file of files) {
  for (const problem of await check(file, actionInputs)) {
    console.error(problem);
    failed = true;
  }
}
if (failed) process.exit(1);
console.log(`${files.length} file(s) valid`);
