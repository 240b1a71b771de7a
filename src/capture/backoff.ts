/**
 * Retry delays as small pure functions chosen by name (after BullMQ's backoffs): exponential growth
 * from `baseMs`, capped at `maxMs`, with "equal jitter" so retries of many blocks do not line up.
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** Random source in [0, 1); injected by tests. */
  random?: () => number;
}

/** Delay before retry number `attempt` (1 = first retry). */
export function exponentialJitter(attempt: number, { baseMs, maxMs, random = Math.random }: BackoffOptions): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
