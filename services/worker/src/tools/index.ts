/**
 * Tools of the worker: the registry, the built-ins, and loading user tools from a module path
 * (GAMBIT_TOOLS_MODULE exporting `register(registry)`).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ValidationError } from '@gambit/shared';
import { registerBuiltinTools, type BuiltinToolOptions } from './builtins.js';
import { ToolRegistry } from './registry.js';

export * from './registry.js';
export { registerBuiltinTools, sleepOrAbort } from './builtins.js';

/** The registry with the built-ins and, when `modulePath` is given, the user's tools. */
export async function createToolRegistry(opts: BuiltinToolOptions & { readonly modulePath?: string }): Promise<ToolRegistry> {
  const registry = new ToolRegistry();
  registerBuiltinTools(registry, opts);
  if (opts.modulePath !== undefined) {
    const mod = (await import(pathToFileURL(resolve(opts.modulePath)).href)) as { register?: unknown };
    if (typeof mod.register !== 'function')
      throw new ValidationError([{ path: 'env.GAMBIT_TOOLS_MODULE', message: `${opts.modulePath} does not export a function register(registry)` }]);
    await (mod.register as (r: ToolRegistry) => unknown)(registry);
  }
  return registry;
}
