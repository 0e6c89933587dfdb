/**
 * Prompt and tool-argument templates (M2: N_in is counted on the prompt rendered with î):
 * `{{inputs.x}}`, `{{nodes.y.output}}` and `{{nodes.y.output.a.b}}` (a path into the JSON
 * output of y). A reference that resolves to nothing is a ValidationError naming it.
 */
import { ValidationError } from '../errors.js';

const TEMPLATE_REF = /\{\{\s*([^}]+?)\s*\}\}/g;

export interface TemplateContext {
  readonly inputs: Readonly<Record<string, unknown>>;
  /** Node outputs (text as produced; JSON outputs are parsed for `.a.b` paths). */
  readonly outputs: Readonly<Record<string, string>>;
}

function stringify(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function walk(value: unknown, path: readonly string[]): unknown {
  let cur = value;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = Array.isArray(cur) && /^\d+$/.test(key) ? cur[Number(key)] : (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function missing(ref: string, why: string): ValidationError {
  return new ValidationError([{ path: `{{${ref}}}`, message: why }]);
}

/** Resolves one reference (`inputs.x`, `nodes.y.output`, `nodes.y.output.a.b`). */
export function resolveRef(ref: string, ctx: TemplateContext): string {
  const parts = ref.split('.');
  if (parts[0] === 'inputs' && parts.length >= 2) {
    const v = walk(ctx.inputs, parts.slice(1));
    if (v === undefined) throw missing(ref, `input "${parts.slice(1).join('.')}" is missing`);
    return stringify(v);
  }
  if (parts[0] === 'nodes' && parts.length >= 3 && parts[2] === 'output') {
    const node = parts[1] ?? '';
    if (!Object.hasOwn(ctx.outputs, node)) throw missing(ref, `output of node "${node}" is not available`);
    const text = ctx.outputs[node] as string;
    if (parts.length === 3) return text;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw missing(ref, `output of node "${node}" is not JSON, so it has no field ${parts.slice(3).join('.')}`);
    }
    const v = walk(parsed, parts.slice(3));
    if (v === undefined) throw missing(ref, `output of node "${node}" has no field ${parts.slice(3).join('.')}`);
    return stringify(v);
  }
  throw missing(ref, 'bad template reference (use inputs.NAME or nodes.ID.output[.path])');
}

/** Renders a template; throws ValidationError naming every reference that cannot be resolved. */
export function renderTemplate(tpl: string, ctx: TemplateContext): string {
  const issues: { path: string; message: string }[] = [];
  const out = tpl.replace(TEMPLATE_REF, (_m, ref: string) => {
    try {
      return resolveRef(ref, ctx);
    } catch (err) {
      if (err instanceof ValidationError) issues.push(...err.issues);
      else throw err;
      return '';
    }
  });
  if (issues.length > 0) throw new ValidationError(issues);
  return out;
}
