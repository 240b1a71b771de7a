/** The I/O a block machine invokes. Tests replace them with `blockMachine.provide({ actors })`. */
import { fromCallback, fromPromise } from 'xstate';
import type { SealReason } from '../../src/archive/manifest.js';
import type { BlockAcks } from '../../src/capture/block-acks.js';
import type { BlockBuffer, SealedBlock } from '../../src/capture/block-buffer.js';
import { storeBlock } from '../../src/capture/store-block.js';
import type { Store } from '../../src/stores/store.js';

export const sealBlock = fromPromise<SealedBlock, { buffer: BlockBuffer<unknown>; reason: SealReason }>(({ input }) =>
  input.buffer.seal(input.reason),
);

export const storeSealedBlock = fromPromise<void, { store: Store; block: SealedBlock }>(({ input, signal }) =>
  storeBlock(input.store, input.block, signal),
);

/** Acks every message of the block, then waits until the server has received them all. */
export const ackMessages = fromPromise<void, { acks: BlockAcks; flush: () => Promise<void> }>(async ({ input }) => {
  input.acks.ackAll();
  await input.flush();
});

/** While a block is being stored, marks its messages in progress so their ack_wait does not run out. */
export const keepAlive = fromCallback<{ type: 'noop' }, { acks: BlockAcks; intervalMs: number; now: boolean }>(({ input }) => {
  // A block that was open for a while: its oldest messages' ack_wait may run out before the first interval.
  if (input.now) input.acks.workingAll();
  const timer = setInterval(() => input.acks.workingAll(), input.intervalMs);
  return () => clearInterval(timer);
});
