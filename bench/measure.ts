/**
 * What one bench case costs: wall time, this process's CPU, the nats-servers' CPU and this process's
 * peak RSS. The servers' CPU matters on a small machine: client and server share the same cores, so a
 * client that burns more CPU also slows the server down.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Line prefix child-usage.ts writes to stderr; the bench reads the CLI child's usage from it. */
export const CHILD_USAGE_MARKER = 'jetvault-bench-usage ';
/** Set in a CLI child's environment: collect garbage before reporting, so the heap figures are what it retains. */
export const GC_AT_EXIT_ENV = 'JETVAULT_BENCH_GC_AT_EXIT';

export interface ChildUsage {
  cpuSeconds: number;
  peakRssMiB: number;
  /** At exit (after a full GC where GC_AT_EXIT_ENV was set): the V8 heap in use, and memory outside it (Buffers). */
  heapUsedMiB: number;
  externalMiB: number;
}

export interface Sample {
  seconds: number;
  /** User + system CPU of this process during the case. */
  cpuSeconds: number;
  /** User + system CPU of the bench's nats-servers during the case (Linux only). */
  serverCpuSeconds: number | undefined;
  /** This process's RSS, sampled every few ms during the case after a full GC before it. */
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

/** This process's high-water mark (maxRSS) since it started. */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** Current RSS of another process (VmRSS in /proc/PID/status); undefined once it has exited or off Linux. */
export function processRssMiB(pid: number): number | undefined {
  try {
    const kib = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kib === undefined ? undefined : Number(kib) / 1024;
  } catch {
    return undefined;
  }
}

const RSS_SAMPLE_MS = 10;

/**
 * The V8 garbage collector, exposed without `node --expose-gc` (the npm script runs plain node): so each
 * case starts from a collected heap and its RSS is less of what earlier cases left behind.
 */
export const collectGarbage: (() => void) | undefined = (() => {
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
})();

/** Runs fn once and samples around it. */
export async function measure<T>(servers: ServerCpu, fn: () => Promise<T>): Promise<{ value: T; sample: Sample }> {
  collectGarbage?.();
  let peakRss = process.memoryUsage.rss();
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), RSS_SAMPLE_MS);
  const cpu0 = process.cpuUsage();
  const server0 = servers.seconds();
  const t0 = performance.now();
  try {
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
        peakRssMiB: Math.max(peakRss, process.memoryUsage.rss()) / 1024 ** 2,
      },
    };
  } finally {
    clearInterval(sampler);
  }
}

/** Rejects when the promise takes longer than ms, so a stuck case fails the bench instead of hanging it. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
