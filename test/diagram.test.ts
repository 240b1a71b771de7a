import { describe, expect, it } from 'vitest';
import { fromPromise, not, setup } from 'xstate';
import { machineToJSON, machineToMermaid } from '../machines/diagram.js';

// A toy with one of everything the diagram must show: initial arrow, `after`, guards, invoke
// onDone/onError, a nested compound state, a parallel state, final states, transitions declared on the
// root and on a compound state into its own children, and a state no transition reaches.
// Keys repeated in two regions (`waiting`, `ok`) get path ids and keep their key as the label.
const toy = setup({
  types: { events: {} as { type: 'msg.add' } | { type: 'seal' } | { type: 'cancel' } | { type: 'next' } | { type: 'reset' } },
  guards: { isFull: () => false },
  delays: { idle: 1000 },
  actors: { store: fromPromise(async () => undefined) },
}).createMachine({
  id: 'toy',
  initial: 'open',
  on: { cancel: '.cancelled' },
  states: {
    open: {
      after: { 30_000: 'sealing', idle: { target: 'sealing', guard: 'isFull' } },
      on: {
        'msg.add': [{ guard: 'isFull', target: 'sealing' }, { actions: () => undefined }],
        seal: { guard: not('isFull'), target: 'sealing' },
      },
    },
    sealing: {
      initial: 'encoding',
      on: { reset: '.encoding' },
      states: {
        encoding: { on: { next: 'compressing' } },
        compressing: { type: 'final' },
      },
      onDone: 'storing',
    },
    storing: {
      invoke: { src: 'store', onDone: 'acked', onError: 'checks' },
    },
    checks: {
      type: 'parallel',
      states: {
        a: { initial: 'waiting', states: { waiting: { on: { next: 'ok' } }, ok: { type: 'final' } } },
        b: { initial: 'waiting', states: { waiting: {}, ok: { type: 'final' } } },
      },
    },
    acked: { type: 'final' },
    cancelled: { type: 'final' },
    unused: {},
  },
});

describe('machineToMermaid', () => {
  const lines = machineToMermaid(toy).split('\n');

  it('draws the toy machine line by line', () => {
    expect(lines).toEqual([
      'stateDiagram-v2',
      '  [*] --> open',
      '  state "any state" as any_state',
      '  any_state --> cancelled: cancel',
      '  open --> sealing: msg.add [isFull]',
      '  open --> sealing: seal [not(isFull)]',
      '  open --> sealing: after 30s',
      '  open --> sealing: after idle [isFull]',
      '  state sealing {',
      '    [*] --> encoding',
      '    state "any sealing state" as sealing_any',
      '    sealing_any --> encoding: reset',
      '    encoding --> compressing: next',
      '    compressing --> [*]',
      '  }',
      '  sealing --> storing: onDone',
      '  storing --> acked: onDone(store)',
      '  storing --> checks: onError(store)',
      '  state checks {',
      '    state a {',
      '      state "waiting" as checks_a_waiting',
      '      state "ok" as checks_a_ok',
      '      [*] --> checks_a_waiting',
      '      checks_a_waiting --> checks_a_ok: next',
      '      checks_a_ok --> [*]',
      '    }',
      '    --',
      '    state b {',
      '      state "waiting" as checks_b_waiting',
      '      state "ok" as checks_b_ok',
      '      [*] --> checks_b_waiting',
      '      checks_b_ok --> [*]',
      '    }',
      '  }',
      '  acked --> [*]',
      '  cancelled --> [*]',
      '  unused',
    ]);
  });

  it('names the initial state, an after delay, a guard, a nested state and a final state', () => {
    expect(lines).toContain('  [*] --> open');
    expect(lines).toContain('  open --> sealing: after 30s');
    expect(lines).toContain('  open --> sealing: msg.add [isFull]');
    expect(lines).toContain('  state sealing {');
    expect(lines).toContain('    compressing --> [*]');
  });

  it('labels a state whose key Mermaid cannot use as an id', () => {
    const m = setup({}).createMachine({ id: 'm', initial: 'in-flight', states: { 'in-flight': { on: { done: 'landed' } }, landed: {} } });
    expect(machineToMermaid(m).split('\n')).toEqual([
      'stateDiagram-v2',
      '  state "in-flight" as in_flight',
      '  [*] --> in_flight',
      '  in_flight --> landed: done',
    ]);
  });
});

describe('machineToJSON', () => {
  const json = machineToJSON(toy);

  it('describes the state tree', () => {
    expect(json.id).toBe('toy');
    expect(json.initial).toBe('open');
    expect(Object.keys(json.states ?? {})).toEqual(['open', 'sealing', 'storing', 'checks', 'acked', 'cancelled', 'unused']);
    expect(json.states?.sealing?.initial).toBe('encoding');
    expect(json.states?.sealing?.states?.compressing?.type).toBe('final');
    expect(json.states?.checks?.type).toBe('parallel');
    expect(json.states?.storing?.invoke).toEqual([{ id: expect.any(String), src: 'store' }]);
  });

  it('lists transitions with event, target and guard', () => {
    expect(json.transitions).toEqual([{ event: 'cancel', kind: 'event', target: 'cancelled' }]);
    expect(json.states?.open?.transitions).toEqual([
      { event: 'msg.add', kind: 'event', guard: 'isFull', target: 'sealing' },
      { event: 'msg.add', kind: 'event', target: null },
      { event: 'seal', kind: 'event', guard: 'not(isFull)', target: 'sealing' },
      { event: 'after 30s', kind: 'after', delay: 30_000, target: 'sealing' },
      { event: 'after idle', kind: 'after', delay: 'idle', guard: 'isFull', target: 'sealing' },
    ]);
    expect(json.states?.storing?.transitions).toEqual([
      { event: 'onDone(store)', kind: 'done', actor: 'store', target: 'acked' },
      { event: 'onError(store)', kind: 'error', actor: 'store', target: 'checks' },
    ]);
  });

  it('is plain JSON', () => {
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  });
});

describe('machineToDot', () => {
  it('draws the block machine as a Graphviz digraph with clusters, final states and guarded edges', async () => {
    const { blockMachine } = await import('../machines/block-machine.js');
    const { machineToDot } = await import('../machines/diagram.js');
    const dot = machineToDot(blockMachine);
    expect(dot.startsWith('digraph "block" {')).toBe(true);
    expect(dot.trimEnd().endsWith('}')).toBe(true);
    expect(dot).toContain('subgraph "cluster_persisting" {');
    expect(dot).toContain('"acked" [label="acked", shape=doublecircle];');
    expect(dot).toContain('"persisting.retrying" -> "persisting.storing" [label="after retryDelay"];');
    expect(dot).toContain('"persisting.storing" -> "failed" [label="onError(storeSealedBlock) [permanentError]"];');
    expect(dot).toContain('"sealing" -> "persisting.storing" [label="onDone(sealBlock)", lhead="cluster_persisting"];');
    expect(dot).toContain('"any state" -> "abandoned" [label="abandon"];');
    // Balanced braces: one per digraph and cluster.
    expect(dot.split('{').length).toBe(dot.split('}').length);
  });
});
