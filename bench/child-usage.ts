/**
 * Loaded with `node --import` into the CLI process the bench spawns: Node cannot read a child's CPU time
 * or peak RSS from outside, so the child reports its own on exit, as one marked line on stderr, with its
 * heap figures at that point.
 */
import { writeSync } from 'node:fs';
import { CHILD_USAGE_MARKER, collectGarbage, GC_AT_EXIT_ENV, peakRssMiB, type ChildUsage } from './measure.js';

process.on('exit', () => {
  const cpu = process.cpuUsage();
  if (process.env[GC_AT_EXIT_ENV]) collectGarbage?.();
  const memory = process.memoryUsage();
  const usage: ChildUsage = { cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssMiB: peakRssMiB(), heapUsedMiB: memory.heapUsed / 1024 ** 2, externalMiB: memory.external / 1024 ** 2 };
  // Synchronous: nothing asynchronous runs after 'exit'.
  writeSync(2, `\n${CHILD_USAGE_MARKER}${JSON.stringify(usage)}\n`);
});
