/**
 * M6 disclosure and effects (issue 10 item 7): a node's admissibility takes the stricter of what
 * the workflow declares for the node and what the tool declares for itself, so a workflow cannot
 * make an irreversible or disclosing tool speculable by under-declaring it. The declarations of
 * the worker's built-in tools are here (the worker's registry is checked against them); the
 * worker refuses a speculative attempt on its own declarations too (defence in depth).
 */
import { EFFECTS, type Effects } from './types.js';

export interface ToolDeclaration {
  readonly effects: Effects;
  readonly discloses: boolean;
}

/** The built-in tools' own declarations (services/worker/src/tools/builtins.ts). */
export const BUILTIN_TOOL_DECLARATIONS: Readonly<Record<string, ToolDeclaration>> = {
  echo: { effects: 'none', discloses: false },
  sleep: { effects: 'none', discloses: false },
  kv_lookup: { effects: 'idempotent', discloses: false },
  send_message: { effects: 'staged', discloses: false },
  charge_card: { effects: 'irreversible', discloses: false },
  http_get: { effects: 'none', discloses: true },
  http_post: { effects: 'irreversible', discloses: true },
};

/** The stricter of two effects classes (none < idempotent < staged < irreversible). */
export function stricterEffects(a: Effects, b: Effects): Effects {
  return EFFECTS.indexOf(a) >= EFFECTS.indexOf(b) ? a : b;
}

/** A tool node's effective effects and disclosure: the stricter of the node's and the tool's. */
export function effectiveDeclaration(node: { readonly tool: string; readonly effects: Effects; readonly discloses: boolean }, decls: Readonly<Record<string, ToolDeclaration>>): ToolDeclaration {
  const own = Object.hasOwn(decls, node.tool) ? decls[node.tool] : undefined;
  if (own === undefined) return { effects: node.effects, discloses: node.discloses };
  return { effects: stricterEffects(node.effects, own.effects), discloses: node.discloses || own.discloses };
}
