/**
 * The tool registry (M6): every tool declares its effects (`none`, `idempotent`, `staged`,
 * `irreversible`) and whether a call discloses intent to an outside service. Built-ins are added
 * by `registerBuiltinTools`; users add their own through GAMBIT_TOOLS_MODULE (`register(registry)`).
 */
import type { Effects, Logger } from '@gambit/shared';
import { UnknownToolError, ValidationError } from '@gambit/shared';
import type { KeySpace, RedisLike, StagedEffect } from '@gambit/shared/redis';

export interface ToolContext {
  /** Aborts when the attempt is cancelled, superseded, or the worker shuts down. */
  readonly signal: AbortSignal;
  readonly tenant: string;
  readonly runId: string;
  readonly nodeId: string;
  readonly attemptId: string;
  readonly kind: 'authoritative' | 'speculative';
  /**
   * Issue 11 D2: the same for every try of this node at this epoch (run, node, epoch), different
   * for a new execution of the node. A tool with an effect passes it on to any outside service
   * that takes one (an `Idempotency-Key` header) or applies its effect at most once per key.
   */
  readonly idempotencyKey: string;
  /** 1 for the first try of the attempt; a higher number means an earlier try may have started. */
  readonly tryNo: number;
  readonly redis: RedisLike;
  readonly ks: KeySpace;
  readonly logger: Logger;
  /** Multiplies simulated delays (GAMBIT_SIM_TIME_SCALE). */
  readonly timeScale: number;
  readonly nowMs: () => number;
}

export interface ToolResult {
  readonly output: string;
  /** Only a `staged` tool may return effects; they go to the attempt's staging list. */
  readonly effects?: readonly StagedEffect[];
}

export interface ToolDefinition {
  readonly name: string;
  readonly effects: Effects;
  readonly discloses?: boolean;
  /**
   * Issue 11 D2: true when the tool applies its effect at most once per `ctx.idempotencyKey`
   * (itself, or through an outside service that honours the key). An `irreversible` tool that
   * does not is never re-run after a try that may have started: the attempt stops in
   * `needs_attention` for an operator.
   */
  readonly honoursIdempotencyKey?: boolean;
  run(args: Readonly<Record<string, unknown>>, ctx: ToolContext): Promise<ToolResult>;
}

export class ToolRegistry {
  private readonly tools = new Map<string, ToolDefinition>();

  register(tool: ToolDefinition): void {
    if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(tool.name))
      throw new ValidationError([{ path: 'tool.name', message: `bad tool name "${tool.name}"` }]);
    if (this.tools.has(tool.name)) throw new ValidationError([{ path: 'tool.name', message: `tool "${tool.name}" is already registered` }]);
    this.tools.set(tool.name, tool);
  }

  /** The tool, or UnknownToolError (non-retryable). */
  get(name: string): ToolDefinition {
    const t = this.tools.get(name);
    if (t === undefined) throw new UnknownToolError(`unknown tool "${name}"`);
    return t;
  }

  has(name: string): boolean {
    return this.tools.has(name);
  }

  names(): string[] {
    return [...this.tools.keys()].sort();
  }
}

/** Reads a required string argument, or throws ValidationError naming it. */
export function stringArg(args: Readonly<Record<string, unknown>>, name: string): string {
  const v = args[name];
  if (typeof v !== 'string') throw new ValidationError([{ path: `args.${name}`, message: 'must be a string' }]);
  return v;
}

/** Reads a required non-negative finite number argument (numbers in strings are accepted). */
export function numberArg(args: Readonly<Record<string, unknown>>, name: string): number {
  const v = args[name];
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0)
    throw new ValidationError([{ path: `args.${name}`, message: 'must be a non-negative number' }]);
  return n;
}
