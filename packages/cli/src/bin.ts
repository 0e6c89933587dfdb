#!/usr/bin/env node
/**
 * Entry point of the `gambit` CLI. Each command is one module under commands/ with a
 * `register(program)`; to add a command, import its register and append it to COMMANDS.
 */
import { register as liveApi } from './commands/api.js';
import { reportError } from './commands/errors.js';
import { register as demo } from './commands/demo.js';
import { register as generate } from './commands/generate.js';
import { register as importTraces } from './commands/import.js';
import { register as keys } from './commands/keys.js';
import { register as replay } from './commands/replay.js';
import { buildProgram, type RegisterCommand } from './program.js';

const COMMANDS: RegisterCommand[] = [demo, replay, importTraces, generate, keys, liveApi];

buildProgram(COMMANDS)
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.exitCode = reportError(err);
  });
