/**
 * `jetvault machines`: every state machine jetvault runs, drawn from its real definition as a Mermaid
 * `stateDiagram-v2` (each under a `%% <name>` line), as Graphviz `digraph`s (each under `// <name>`), or as
 * JSON keyed by name.
 */
import { Command, Option } from 'commander';
import type { AnyStateMachine } from 'xstate';
import { blockMachine } from '../../machines/block-machine.js';
import { captureSupervisorMachine } from '../../machines/capture-supervisor.js';
import { connectionMachine } from '../../machines/connection-machine.js';
import { machineToDot, machineToJSON, machineToMermaid } from '../../machines/diagram.js';
import { subscriptionMachine } from '../../machines/subscription-machine.js';
import { restoreMachine } from '../../restore/restore-machine.js';
import { ExitCode } from './exit-codes.js';
import type { CliContext } from './report.js';

/** In the order data flows: the supervisor and what it runs, then restore. */
export const MACHINES: Readonly<Record<string, AnyStateMachine>> = {
  'capture-supervisor': captureSupervisorMachine,
  connection: connectionMachine,
  subscription: subscriptionMachine,
  block: blockMachine,
  restore: restoreMachine,
};

export function machinesCommand(ctx: CliContext): Command {
  return new Command('machines')
    .description("print jetvault's state machines, drawn from their definitions")
    .addOption(new Option('--format <format>', 'output format').choices(['mermaid', 'dot', 'json']).default('mermaid'))
    .action((flags: { format: 'mermaid' | 'dot' | 'json' }) => {
      ctx.out(renderMachines(flags.format));
      ctx.exitCode = ExitCode.ok;
    });
}

export function renderMachines(format: 'mermaid' | 'dot' | 'json'): string {
  const entries = Object.entries(MACHINES);
  if (format === 'json') return JSON.stringify(Object.fromEntries(entries.map(([name, m]) => [name, machineToJSON(m)])), null, 2);
  if (format === 'dot') return entries.map(([name, m]) => `// ${name}\n${machineToDot(m)}`).join('\n\n');
  return entries.map(([name, m]) => `%% ${name}\n${machineToMermaid(m)}`).join('\n\n');
}
