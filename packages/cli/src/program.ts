/**
 * The `gambit` command-line program. Each command is one module under commands/ exporting a
 * `register(program)` that adds itself; bin.ts lists them.
 */
import { Command } from 'commander';

export type RegisterCommand = (program: Command) => void;

export function buildProgram(commands: readonly RegisterCommand[]): Command {
  const program = new Command();
  program.name('gambit').description('Cost-aware speculative execution of LLM-agent workflows').showHelpAfterError();
  for (const register of commands) register(program);
  return program;
}
