/**
 * A restore, step by step:
 *
 *   listing ─▶ checking ─▶ preparing ─▶ publishing ─▶ finishing ─▶ done
 *      │          │            │            │
 *      └──────────┴────────────┴────────────┴─▶ failing ─▶ failed
 *
 * listing reads the manifests and picks the archived stream; checking proves every block's checksum
 * before anything is published (skipped without precheck); preparing connects and finds or creates the
 * target; publishing merges the blocks in stream order and republishes them (one actor: no event per
 * message); finishing and failing both release what restore opened.
 */
import { assign, not, setup } from 'xstate';
import type { ArchivedStream } from './archive-reader.js';
import { checkBlocks, listArchive, prepareTarget, publishMessages, releaseResources, type RestoreJob, type RestoreSession } from './restore-actors.js';
import type { RestoreReport } from './restore.js';

export interface RestoreContext {
  job: RestoreJob;
  archive: ArchivedStream | undefined;
  session: RestoreSession | undefined;
  report: RestoreReport | undefined;
  error: unknown;
}

export const restoreMachine = setup({
  types: {
    context: {} as RestoreContext,
    input: {} as { job: RestoreJob },
    output: {} as { report: RestoreReport | undefined; error: unknown },
  },
  actors: { listArchive, checkBlocks, prepareTarget, publishMessages, releaseResources },
  actions: {
    keepError: assign({ error: ({ event }) => (event as { error?: unknown }).error }),
  },
  guards: {
    precheckEnabled: ({ context }) => context.job.precheck,
  },
}).createMachine({
  id: 'restore',
  context: ({ input }) => ({ job: input.job, archive: undefined, session: undefined, report: undefined, error: undefined }),
  initial: 'listing',
  output: ({ context }) => ({ report: context.report, error: context.error }),
  states: {
    listing: {
      invoke: {
        src: 'listArchive',
        input: ({ context }) => ({ job: context.job }),
        onDone: { target: 'checking', actions: assign({ archive: ({ event }) => event.output }) },
        onError: { target: 'failing', actions: 'keepError' },
      },
    },
    checking: {
      // Without precheck each block is still checked when it is opened, before its messages are used.
      always: { guard: not('precheckEnabled'), target: 'preparing' },
      invoke: {
        src: 'checkBlocks',
        input: ({ context }) => ({ job: context.job, archive: context.archive as ArchivedStream }),
        onDone: { target: 'preparing' },
        onError: { target: 'failing', actions: 'keepError' },
      },
    },
    preparing: {
      invoke: {
        src: 'prepareTarget',
        input: ({ context }) => ({ job: context.job, archive: context.archive as ArchivedStream }),
        onDone: { target: 'publishing', actions: assign({ session: ({ event }) => event.output }) },
        onError: { target: 'failing', actions: 'keepError' },
      },
    },
    publishing: {
      invoke: {
        src: 'publishMessages',
        input: ({ context }) => ({ job: context.job, archive: context.archive as ArchivedStream, session: context.session as RestoreSession }),
        onDone: { target: 'finishing', actions: assign({ report: ({ event }) => event.output }) },
        onError: { target: 'failing', actions: 'keepError' },
      },
    },
    finishing: {
      invoke: {
        src: 'releaseResources',
        input: ({ context }) => ({ job: context.job, session: context.session }),
        onDone: { target: 'done' },
        onError: { target: 'failed', actions: 'keepError' },
      },
    },
    failing: {
      invoke: {
        src: 'releaseResources',
        input: ({ context }) => ({ job: context.job, session: context.session }),
        onDone: { target: 'failed' },
        // The first error is the one worth reporting.
        onError: { target: 'failed' },
      },
    },
    done: { type: 'final' },
    failed: { type: 'final' },
  },
});
