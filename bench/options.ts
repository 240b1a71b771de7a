/** The bench's command-line flags. */
import { parseArgs } from 'node:util';

export const GROUPS = ['capture', 'restore', 'scale', 'memory'] as const;
export type Group = (typeof GROUPS)[number];

export interface BenchOptions {
  quick: boolean;
  /** Messages of each 100-byte section; 4 KiB sections get a quarter. */
  messages: number;
  /** Messages of the memory case. */
  memoryMessages: number;
  only: ReadonlySet<Group>;
  /** Only cases whose full name matches (plus the baselines and archive they need). */
  filter: RegExp | undefined;
  /** Print the cases that would run and exit. */
  list: boolean;
  /** Rounds of each section's cases, in turn; each row is the median round. */
  repeat: number;
}

export const USAGE = `usage: npm run bench -- [flags]   (or: node dist/bench/capture.js [flags])

  --quick              a subset for a quick look, under 2 minutes: 50,000 messages; raw+none as
                       library and CLI for both sizes, 1 and 64 keys; raw+gzip and raw+snappy
                       (library) for 100 B on 1 key; restore and verify on 1 key; no scale or
                       memory groups unless named with --only
  --messages N         messages of each 100-byte section (default 200,000; --quick 50,000);
                       4 KiB sections get N/4
  --only GROUPS        comma-separated groups to run: ${GROUPS.join(', ')}
                       (default: all; --quick: capture,restore)
                         capture  bare consume+ack, then capture --once as library and CLI,
                                  raw/ndjson/csv × none/gzip/snappy, 100 B and 4 KiB, 1 and 64 keys
                         restore  bare windowed js.publish(), restore, verify
                         scale    1, 64 and 1,000 keys; 1 and 2 CLI processes on one durable consumer
                         memory   1,000,000-message CLI capture with default options: peak RSS and
                                  whether RSS grows with the stream
  --filter REGEX       only cases whose name matches (see --list), with the baselines and the
                       raw+none archive they need; e.g. --filter 'csv|ndjson', --filter '^4KiB'
  --repeat N           run each section's cases N times in turn (baseline, captures, baseline, ...)
                       and report the median of each, with the spread (default 1; the machine's
                       own noise between two runs of the same case was up to ±20 % here)
  --memory-messages N  messages of the memory case (default 1,000,000)
  --list               print the names of the cases that would run, and exit
  --help               this text`;

/** A wrong flag: reported in one line with a pointer to --help, not with a stack. */
export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

const QUICK_MESSAGES = 50_000;
const FULL_MESSAGES = 200_000;
const MEMORY_MESSAGES = 1_000_000;

function positiveInt(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value.replace(/[_,]/g, ''));
  if (!Number.isSafeInteger(n) || n <= 0) throw new BenchUsageError(`${flag} must be a positive integer, got ${value}`);
  return n;
}

function groups(value: string | undefined, quick: boolean): Set<Group> {
  if (value === undefined) return new Set(quick ? ['capture', 'restore'] : GROUPS);
  const names = value.split(',').map((g) => g.trim());
  const unknown = names.filter((g) => !(GROUPS as readonly string[]).includes(g));
  if (unknown.length > 0 || names.length === 0) throw new BenchUsageError(`--only takes ${GROUPS.join(', ')} (comma-separated), got ${value}`);
  return new Set(names as Group[]);
}

/** undefined for --help. */
export function parseOptions(argv: string[]): BenchOptions | undefined {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        messages: { type: 'string' },
        'memory-messages': { type: 'string' },
        only: { type: 'string' },
        filter: { type: 'string' },
        list: { type: 'boolean', default: false },
        repeat: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    // Unknown flag, missing value: a usage error like the others.
    throw new BenchUsageError(error instanceof Error ? error.message : String(error));
  }
  const { values } = parsed;
  if (values.help) return undefined;
  const quick = values.quick ?? false;
  let filter: RegExp | undefined;
  if (values.filter !== undefined) {
    try {
      filter = new RegExp(values.filter, 'i');
    } catch (error) {
      throw new BenchUsageError(`--filter is not a regular expression: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return {
    quick,
    messages: positiveInt('--messages', values.messages, quick ? QUICK_MESSAGES : FULL_MESSAGES),
    memoryMessages: positiveInt('--memory-messages', values['memory-messages'], MEMORY_MESSAGES),
    only: groups(values.only, quick),
    filter,
    list: values.list ?? false,
    repeat: positiveInt('--repeat', values.repeat, 1),
  };
}
