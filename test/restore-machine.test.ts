import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, toPromise } from 'xstate';
import { CorruptBlockError, JetvaultError } from '../src/errors.js';
import { silentLogger } from '../src/logger.js';
import type { ArchivedStream } from '../restore/archive-reader.js';
import type { RestoreJob, RestoreSession } from '../restore/restore-actors.js';
import { restoreMachine } from '../restore/restore-machine.js';
import type { RestoreReport } from '../restore/restore.js';

const archive = { stream: 'SRC', blocks: [], messages: 0, firstSeq: 1, lastSeq: 1 } as unknown as ArchivedStream;
const session = { target: { stream: 'DST', created: true } } as unknown as RestoreSession;
const report: RestoreReport = { sourceStream: 'SRC', targetStream: 'DST', createdStream: true, blocks: 0, messages: 0, skippedDuplicates: 0, reconnects: 0, reconnectMs: 0, durationMs: 1 };

function job(precheck: boolean): RestoreJob {
  return { precheck, logger: silentLogger() } as unknown as RestoreJob;
}

/** The machine with every step stubbed; `fail` makes one step reject. */
function run(options: { precheck?: boolean; fail?: string; error?: unknown } = {}) {
  const calls: string[] = [];
  const step = <T, I>(name: string, output: T) =>
    fromPromise<T, I>(async () => {
      calls.push(name);
      if (options.fail === name) throw options.error ?? new JetvaultError('JV_CONNECT_FAILED', `${name} failed`);
      return output;
    });
  const machine = restoreMachine.provide({
    actors: {
      listArchive: step<ArchivedStream, { job: RestoreJob }>('listArchive', archive),
      checkBlocks: step<void, { job: RestoreJob; archive: ArchivedStream }>('checkBlocks', undefined),
      prepareTarget: step<RestoreSession, { job: RestoreJob; archive: ArchivedStream }>('prepareTarget', session),
      publishMessages: step<RestoreReport, { job: RestoreJob; archive: ArchivedStream; session: RestoreSession }>('publishMessages', report),
      releaseResources: step<void, { job: RestoreJob; session: RestoreSession | undefined }>('releaseResources', undefined),
    },
  });
  const actor = createActor(machine, { input: { job: job(options.precheck ?? true) } });
  const states: string[] = [];
  actor.subscribe((snapshot) => {
    const value = String(snapshot.value);
    if (states.at(-1) !== value) states.push(value);
  });
  actor.start();
  return { actor, calls, states, done: toPromise(actor) };
}

describe('restore machine', () => {
  it('walks listing → checking → preparing → publishing → finishing → done and outputs the report', async () => {
    const { calls, states, done } = run();
    const output = await done;
    expect(states).toEqual(['listing', 'checking', 'preparing', 'publishing', 'finishing', 'done']);
    expect(calls).toEqual(['listArchive', 'checkBlocks', 'prepareTarget', 'publishMessages', 'releaseResources']);
    expect(output).toEqual({ report, error: undefined });
  });

  it('skips the checksum pass without precheck', async () => {
    const { calls, states, done } = run({ precheck: false });
    await done;
    expect(calls).not.toContain('checkBlocks');
    expect(states).toEqual(['listing', 'preparing', 'publishing', 'finishing', 'done']);
  });

  it('stops before connecting when a block is corrupt, releases and keeps the error', async () => {
    const corrupt = new CorruptBlockError('S/x/1.jv', 'SHA-256 mismatch');
    const { actor, calls, states, done } = run({ fail: 'checkBlocks', error: corrupt });
    const output = await done;
    expect(calls).toEqual(['listArchive', 'checkBlocks', 'releaseResources']);
    expect(states.slice(-2)).toEqual(['failing', 'failed']);
    expect(output.error).toBe(corrupt);
    expect(actor.getSnapshot().matches('failed')).toBe(true);
  });

  for (const step of ['listArchive', 'prepareTarget', 'publishMessages']) {
    it(`fails from ${step}, releasing what was opened`, async () => {
      const { calls, done } = run({ fail: step });
      const output = await done;
      expect(calls.at(-1)).toBe('releaseResources');
      expect(output.report).toBeUndefined();
      expect(output.error).toMatchObject({ message: `${step} failed` });
    });
  }

  it('keeps the first error when releasing fails too', async () => {
    const calls: string[] = [];
    const machine = restoreMachine.provide({
      actors: {
        listArchive: fromPromise<ArchivedStream, { job: RestoreJob }>(async () => {
          throw new JetvaultError('JV_ARCHIVE_EMPTY', 'nothing');
        }),
        releaseResources: fromPromise<void, { job: RestoreJob; session: RestoreSession | undefined }>(async () => {
          calls.push('release');
          throw new Error('close failed');
        }),
      },
    });
    const output = await toPromise(createActor(machine, { input: { job: job(true) } }).start());
    expect(calls).toEqual(['release']);
    expect(output.error).toMatchObject({ code: 'JV_ARCHIVE_EMPTY' });
  });
});
