/**
 * What one bench case costs: wall time, this process's CPU, the nats-servers' CPU and this process's
 * peak RSS. The servers' CPU matters on a small machine: client and server share the same cores, so a
 * client that burns more CPU also slows the server down.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Line prefix child-usage.ts writes to stderr; the bench reads the CLI child's usage from it. */
export const CHILD_USAGE_MARKER = 'jetvault-bench-usage ';

export interface ChildUsage {
  cpuSeconds: number;
  peakRssMiB: number;
}

export interface Sample {
  seconds: number;
  /** User + system CPU of this process during the case. */
  cpuSeconds: number;
  /** User + system CPU of the bench's nats-servers during the case (Linux only). */
  serverCpuSeconds: number | undefined;
  /** maxRSS of this process so far: a high-water mark, it never goes down between cases. */
  peakRssMiB: number;
}

/** Linux reports /proc times in clock ticks; USER_HZ is 100 on every mainstream kernel build. */
const CLOCK_TICKS_PER_SECOND = 100;

/** Reads the CPU seconds of the nats-server processes whose store dir is one of ours. */
export class ServerCpu {
  private readonly pids: number[];

  constructor(storeDirs: readonly string[]) {
    this.pids = findPidsByArgument(storeDirs);
  }

  /** undefined when /proc is unavailable or no server was found. */
  seconds(): number | undefined {
    if (this.pids.length === 0) return undefined;
    let ticks = 0;
    for (const pid of this.pids) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15 of the line.
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        ticks += Number(fields[11]) + Number(fields[12]);
      } catch {
        return undefined;
      }
    }
    return ticks / CLOCK_TICKS_PER_SECOND;
  }
}

/** Pids of processes with one of these exact strings among their arguments (the servers' `-sd DIR`). */
function findPidsByArgument(values: readonly string[]): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args.some((a) => values.includes(a))) pids.push(Number(entry));
    } catch {
      // The process exited while we looked.
    }
  }
  return pids;
}

export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** Runs fn once and samples around it. */
export async function measure<T>(servers: ServerCpu, fn: () => Promise<T>): Promise<{ value: T; sample: Sample }> {
  const cpu0 = process.cpuUsage();
  const server0 = servers.seconds();
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const server1 = servers.seconds();
  return {
    value,
    sample: {
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      serverCpuSeconds: server0 !== undefined && server1 !== undefined ? server1 - server0 : undefined,
      peakRssMiB: peakRssMiB(),
    },
  };
}

/** Rejects when the promise takes longer than ms, so a stuck case fails the bench instead of hanging it. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
