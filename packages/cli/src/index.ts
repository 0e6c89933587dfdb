/** @gambit/cli as a library: the program builder and the error reporter. */
export { buildProgram, type RegisterCommand } from './program.js';
export { reportError } from './commands/errors.js';
