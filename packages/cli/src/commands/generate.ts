/**
 * `gambit generate <archetype>`: seeded synthetic traces of one of the eight workload
 * archetypes (M11), in the replay format; `--workflow` prints its live workflow definition.
 */
import { writeFile } from 'node:fs/promises';
import { ARCHETYPES, archetypeByName, toJsonLines } from '@gambit/replay';
import { loadSnapshotPriceTable, ValidationError } from '@gambit/shared';
import { type Command, InvalidArgumentError } from 'commander';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be an integer ≥ 1');
  return n;
}

export function register(program: Command): void {
  program
    .command('generate')
    .description(`Generate seeded traces of a workload archetype: ${ARCHETYPES.map((a) => a.name).join(', ')}`)
    .argument('<archetype>', 'archetype name')
    .option('--runs <n>', 'number of runs', positiveInt, 200)
    .option('--seed <n>', 'seed', (v) => Number.parseInt(v, 10), 1)
    .option('--workflow', 'print the live workflow definition (JSON) instead of traces', false)
    .option('-o, --out <file>', 'write here instead of stdout')
    .action(async (name: string, opts: { runs: number; seed: number; workflow: boolean; out?: string }) => {
      const a = archetypeByName(name);
      if (a === undefined)
        throw new ValidationError([{ path: 'archetype', message: `unknown archetype "${name}"; one of ${ARCHETYPES.map((x) => x.name).join(', ')}` }]);
      const text = opts.workflow
        ? `${JSON.stringify(a.workflow(loadSnapshotPriceTable()), null, 2)}\n`
        : toJsonLines(a.generate({ seed: opts.seed, runs: opts.runs }));
      if (opts.out === undefined) process.stdout.write(text);
      else await writeFile(opts.out, text);
    });
}
