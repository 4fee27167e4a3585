/**
 * Test-only: checks a value against the subset of JSON Schema our schemas use. A keyword it does
 * not implement throws rather than being skipped, so a schema cannot outgrow it unnoticed.
 */
export type Schema = { [keyword: string]: unknown };

const ANNOTATIONS = new Set(['$schema', '$id', '$comment', 'title', 'description', 'examples']);
const CHECKED = new Set(['type', 'required', 'properties', 'additionalProperties', 'items', 'enum', 'const', 'pattern', 'minimum']);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

const matchesType = (v: unknown, t: string) => typeOf(v) === t || (t === 'number' && typeOf(v) === 'integer');

/** Returns one message per violation, each prefixed with its JSON path; empty means valid. */
export function checkSchema(schema: Schema, value: unknown, path = '$'): string[] {
  for (const k of Object.keys(schema)) {
    if (!ANNOTATIONS.has(k) && !CHECKED.has(k)) throw new Error(`schema-check: unsupported keyword ${k} at ${path}`);
  }
  const types = schema.type === undefined ? [] : ([] as string[]).concat(schema.type as string | string[]);
  if (types.length && !types.some((t) => matchesType(value, t))) return [`${path}: expected ${types.join('|')}, got ${typeOf(value)}`];
  const errors: string[] = [];
  if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(value)) errors.push(`${path}: expected ${JSON.stringify(schema.const)}`);
  if (schema.enum && !(schema.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errors.push(`${path}: ${JSON.stringify(value)} not in enum`);
  }
  if (typeof value === 'string' && schema.pattern && !new RegExp(schema.pattern as string, 'u').test(value)) {
    errors.push(`${path}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
  }
  if (typeof value === 'number' && typeof schema.minimum === 'number' && value < schema.minimum) errors.push(`${path}: below ${schema.minimum}`);
  if (Array.isArray(value) && schema.items) value.forEach((v, i) => errors.push(...checkSchema(schema.items as Schema, v, `${path}[${i}]`)));
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required ?? []) as string[]) if (!Object.hasOwn(obj, r)) errors.push(`${path}: missing ${r}`);
    for (const [k, v] of Object.entries(obj)) {
      const sub = Object.hasOwn(props, k) ? props[k] : schema.additionalProperties;
      if (sub === false) errors.push(`${path}: unexpected property ${k}`);
      else if (sub && sub !== true) errors.push(...checkSchema(sub as Schema, v, `${path}.${k}`));
    }
  }
  return errors;
}
