/**
 * Which cases a run measures: sections (one workload, hence one source stream, each) of steps. The
 * flags pick steps; the steps they depend on come along: a capture needs its bare consume+ack baseline
 * (its ratio), restore its bare publish baseline, and restore and verify the library's raw+none archive.
 */
import { COMPRESSION_NAMES, type CompressionName } from '../src/compression/index.js';
import { FORMAT_NAMES, type FormatName } from '../src/formats/index.js';
import type { BenchOptions, Group } from './options.js';
import { workloadLabel, type PayloadBytes, type Workload } from './workload.js';

export type Step =
  | { kind: 'bare-consume' }
  | {
      kind: 'capture';
      via: 'lib' | 'cli';
      format: FormatName;
      compression: CompressionName;
      /** CLI processes at once on the same durable consumer. */
      processes: number;
      /** The CLI's --idle, where not the default. */
      idle?: string;
    }
  | { kind: 'bare-publish' }
  | { kind: 'restore' }
  | { kind: 'verify' };

export interface Section {
  /** `100B-64keys`, `scale/100B-1000keys`: the first part of its case names. */
  name: string;
  workload: Workload;
  steps: Step[];
}

export interface Plan {
  sections: Section[];
  /** The memory case: one CLI capture with default options, sampled while it runs. */
  memory: Pick<Section, 'name' | 'workload'> | undefined;
}

const SIZES: readonly PayloadBytes[] = [100, 4096];
const CAPTURE_KEYS = [1, 64];
/** 4 KiB sections get this fraction of --messages: about 10× the bytes of a 100-byte section. */
const LARGE_MESSAGE_SHARE = 4;
/**
 * Scale: open blocks (keys), and processes on one consumer. 1,000 keys capture at a few thousand msgs/s,
 * so that section gets a quarter of the messages; with that many keys each block also sees a message
 * only every second or so, which is why only the sections with fewer keys try two processes (below).
 */
const SCALE_SECTIONS = [
  { keys: 1, share: 1, processes: true },
  { keys: 64, share: 1, processes: true },
  { keys: 1000, share: 4, processes: false },
] as const;
const SCALE_PROCESSES = 2;
/**
 * `--once` waits until the consumer has no unacked message other than its own, so two processes wait for
 * each other until one's open block seals by idleness: the runs that compare processes (one process too,
 * for a fair comparison) use a short --idle instead of the default 30 s.
 */
const SCALE_IDLE = '500ms';

export const MEMORY_CASE = 'capture CLI raw+none, default options';

export function stepName(step: Step): string {
  switch (step.kind) {
    case 'bare-consume':
      return 'bare consume+ack';
    case 'capture':
      return `capture ${step.via === 'lib' ? 'lib' : 'CLI'} ${step.format}+${step.compression}${step.processes > 1 ? ` ${step.processes} processes` : ''}`;
    case 'bare-publish':
      return 'bare publish (256 in flight)';
    case 'restore':
      return 'restore raw+none';
    case 'verify':
      return 'verify raw+none';
  }
}

export const caseName = (section: { name: string }, step: Step | string) => `${section.name} ${typeof step === 'string' ? step : stepName(step)}`;

const capture = (via: 'lib' | 'cli', format: FormatName, compression: CompressionName, more: { processes?: number; idle?: string } = {}): Step => ({
  kind: 'capture',
  via,
  format,
  compression,
  processes: 1,
  ...more,
});
const isArchive = (s: Step) => s.kind === 'capture' && s.via === 'lib' && s.format === 'raw' && s.compression === 'none' && s.processes === 1;

interface Candidate {
  step: Step;
  group: Group;
  /** Part of the --quick subset (scale runs whole, and with --quick only when named in --only). */
  quick: boolean;
}

/** Every step a capture/restore section can have, in the order they run. */
function captureRestoreCandidates(w: Workload): Candidate[] {
  const small = w.payloadBytes === 100;
  const oneKey = w.keys === 1;
  const combos = FORMAT_NAMES.flatMap((f) => COMPRESSION_NAMES.map((c) => [f, c] as const));
  // --quick: raw with every compression as a library call on the simplest workload, raw+none everywhere
  // else (ndjson and csv only in full runs); restore and verify on one key.
  const quickLib = (f: FormatName, c: CompressionName) => f === 'raw' && (c === 'none' || (small && oneKey));
  return [
    { step: { kind: 'bare-consume' }, group: 'capture', quick: true },
    ...combos.map(([f, c]) => ({ step: capture('lib', f, c), group: 'capture' as const, quick: quickLib(f, c) })),
    ...combos.map(([f, c]) => ({ step: capture('cli', f, c), group: 'capture' as const, quick: f === 'raw' && c === 'none' })),
    { step: { kind: 'bare-publish' }, group: 'restore', quick: oneKey },
    { step: { kind: 'restore' }, group: 'restore', quick: oneKey },
    { step: { kind: 'verify' }, group: 'restore', quick: oneKey },
  ];
}

function scaleCandidates(processes: boolean): Candidate[] {
  const cli = processes ? [capture('cli', 'raw', 'none', { idle: SCALE_IDLE }), capture('cli', 'raw', 'none', { processes: SCALE_PROCESSES, idle: SCALE_IDLE })] : [capture('cli', 'raw', 'none')];
  return [{ kind: 'bare-consume' } as const, capture('lib', 'raw', 'none'), ...cli].map((step) => ({ step, group: 'scale', quick: true }));
}

/** The chosen steps and those they depend on, in candidate order; empty when nothing was chosen. */
function choose(section: { name: string }, candidates: Candidate[], o: BenchOptions): Step[] {
  const chosen = candidates.map((c) => o.only.has(c.group) && (!o.quick || c.quick) && (o.filter?.test(caseName(section, c.step)) ?? true));
  const has = (test: (s: Step) => boolean) => candidates.some((c, i) => chosen[i] && test(c.step));
  const needsArchive = has((s) => s.kind === 'restore' || s.kind === 'verify');
  const needsConsume = needsArchive || has((s) => s.kind === 'capture');
  const needsPublish = has((s) => s.kind === 'restore');
  return candidates
    .filter((c, i) => chosen[i] || (needsConsume && c.step.kind === 'bare-consume') || (needsPublish && c.step.kind === 'bare-publish') || (needsArchive && isArchive(c.step)))
    .map((c) => c.step);
}

export function buildPlan(o: BenchOptions): Plan {
  const sections: Section[] = [];
  const add = (name: string, workload: Workload, candidates: Candidate[]) => {
    const steps = choose({ name }, candidates, o);
    if (steps.length > 0) sections.push({ name, workload, steps });
  };
  for (const payloadBytes of SIZES) {
    const messages = payloadBytes === 100 ? o.messages : Math.max(1, Math.round(o.messages / LARGE_MESSAGE_SHARE));
    for (const keys of CAPTURE_KEYS) {
      const workload = { payloadBytes, keys, messages };
      add(workloadLabel(workload), workload, captureRestoreCandidates(workload));
    }
  }
  for (const { keys, share, processes } of SCALE_SECTIONS) {
    const workload: Workload = { payloadBytes: 100, keys, messages: Math.max(1, Math.round(o.messages / share)) };
    add(`scale/${workloadLabel(workload)}`, workload, scaleCandidates(processes));
  }
  const memoryWorkload: Workload = { payloadBytes: 100, keys: 1, messages: o.memoryMessages };
  const memory = { name: `memory/${workloadLabel(memoryWorkload)}`, workload: memoryWorkload };
  const memoryChosen = o.only.has('memory') && (o.filter?.test(caseName(memory, MEMORY_CASE)) ?? true);
  return { sections, memory: memoryChosen ? memory : undefined };
}

/** Every case name the plan will report, in order. */
export function planCaseNames(plan: Plan): string[] {
  const names = plan.sections.flatMap((s) => s.steps.map((step) => caseName(s, step)));
  return plan.memory ? [...names, caseName(plan.memory, MEMORY_CASE)] : names;
}
