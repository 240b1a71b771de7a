/**
 * Diagrams drawn from the real machine definitions (never from a hand-kept copy), so `jetvault machines`
 * and the docs cannot drift from the code. Walks `machine.root`: child states, initial states, final and
 * parallel types, event / delayed / eventless transitions with guard names, and invoke onDone/onError.
 */
import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';

export type TransitionKind = 'event' | 'after' | 'always' | 'done' | 'error' | 'snapshot';

export interface TransitionJSON {
  /** What triggers it, as the diagram labels it: `seal`, `after 30s`, `onDone(store)`, `always`. */
  event: string;
  kind: TransitionKind;
  /** Target state path (`persisting.storing`); null for a transition that only runs actions. */
  target: string | null;
  guard?: string;
  /** For `after`: milliseconds, or the name of a configured delay. */
  delay?: number | string;
  /** For `done` / `error` / `snapshot` of an invoked actor: its source name. */
  actor?: string;
}

export interface StateJSON {
  /** Dotted path from the machine root (`persisting.storing`); '' for the root. */
  path: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** Key of the initial child, for compound states. */
  initial?: string;
  invoke?: { id: string; src: string }[];
  transitions: TransitionJSON[];
  states?: Record<string, StateJSON>;
}

export interface MachineJSON extends StateJSON {
  id: string;
}

/** One transition of a state node, described; a multi-target transition yields one entry per target. */
interface DescribedTransition {
  label: string;
  json: Omit<TransitionJSON, 'target'>;
  targets: AnyStateNode[];
}

export function machineToJSON(machine: AnyStateMachine): MachineJSON {
  return { id: machine.id, ...stateToJSON(machine.root) };
}

export function machineToMermaid(machine: AnyStateMachine): string {
  const ids = mermaidIds(machine.root);
  const lines = ['stateDiagram-v2'];
  renderChildren(machine.root, ids, mentionedStates(machine.root), 1, lines);
  return lines.join('\n');
}

// ---------------------------------------------------------------- mermaid

interface MermaidIds {
  states: Map<AnyStateNode, string>;
  used: Set<string>;
}

function renderChildren(node: AnyStateNode, ids: MermaidIds, mentioned: Set<AnyStateNode>, depth: number, lines: string[]): void {
  const pad = '  '.repeat(depth);
  const children = childNodes(node);
  // Labels first, so Mermaid knows a renamed state before any arrow mentions it.
  for (const child of children) {
    const id = idOf(ids, child);
    if (id !== child.key) lines.push(`${pad}state "${child.key}" as ${id}`);
  }
  if (node.type === 'compound') {
    for (const target of node.initial?.target ?? []) lines.push(`${pad}[*] --> ${idOf(ids, target)}`);
  }
  // A transition declared on a state that leads into its own children applies in any of its substates.
  // Mermaid cannot draw an edge from a composite into itself, so it starts from an "any state" node inside.
  const inward = describeTransitions(node).flatMap((t) => t.targets.filter((target) => isDescendant(target, node)).map((target) => ({ t, target })));
  if (inward.length > 0) {
    const anyId = uniqueId(node.path.length === 0 ? 'any_state' : `${idOf(ids, node)}_any`, ids.used);
    ids.used.add(anyId);
    lines.push(`${pad}state "${node.path.length === 0 ? 'any state' : `any ${node.key} state`}" as ${anyId}`);
    for (const { t, target } of inward) lines.push(`${pad}${anyId} --> ${idOf(ids, target)}: ${t.label}`);
  }
  children.forEach((child, index) => {
    // Parallel regions are separated by `--` inside their parent's block.
    if (node.type === 'parallel' && index > 0) lines.push(`${pad}--`);
    const id = idOf(ids, child);
    if (child.type === 'compound' || child.type === 'parallel') {
      lines.push(`${pad}state ${id} {`);
      renderChildren(child, ids, mentioned, depth + 1, lines);
      lines.push(`${pad}}`);
    } else if (!mentioned.has(child)) {
      // A state no arrow touches would otherwise be missing from the diagram.
      lines.push(`${pad}${id}`);
    }
    for (const t of describeTransitions(child)) {
      for (const target of t.targets) {
        if (!isDescendant(target, child)) lines.push(`${pad}${id} --> ${idOf(ids, target)}: ${t.label}`);
      }
    }
    if (child.type === 'final') lines.push(`${pad}${id} --> [*]`);
  });
}

/** States some line of the diagram names: initial states, transition sources and targets, finals. */
function mentionedStates(root: AnyStateNode): Set<AnyStateNode> {
  const mentioned = new Set<AnyStateNode>();
  const walk = (node: AnyStateNode) => {
    if (node.type === 'final') mentioned.add(node);
    if (node.type === 'compound') for (const target of node.initial?.target ?? []) mentioned.add(target);
    for (const t of describeTransitions(node)) {
      for (const target of t.targets) {
        mentioned.add(target);
        if (!isDescendant(target, node)) mentioned.add(node);
      }
    }
    for (const child of childNodes(node)) walk(child);
  };
  walk(root);
  return mentioned;
}

function isDescendant(node: AnyStateNode, ancestor: AnyStateNode): boolean {
  for (let p = node.parent; p; p = p.parent) if (p === ancestor) return true;
  return false;
}

/**
 * Mermaid ids are global to a diagram: a state's key when it is unique in the machine, else its path
 * joined with `_`; characters Mermaid would misread become `_` (the key is then shown as a label).
 */
function mermaidIds(root: AnyStateNode): MermaidIds {
  const all: AnyStateNode[] = [];
  const walk = (node: AnyStateNode) => {
    for (const child of childNodes(node)) {
      all.push(child);
      walk(child);
    }
  };
  walk(root);
  const keyCount = new Map<string, number>();
  for (const n of all) keyCount.set(n.key, (keyCount.get(n.key) ?? 0) + 1);
  const states = new Map<AnyStateNode, string>();
  const used = new Set<string>();
  for (const n of all) {
    const raw = keyCount.get(n.key) === 1 ? n.key : n.path.join('_');
    const id = uniqueId(raw.replace(/[^A-Za-z0-9_]/g, '_'), used);
    used.add(id);
    states.set(n, id);
  }
  return { states, used };
}

function uniqueId(base: string, used: Set<string>): string {
  let id = base;
  for (let i = 2; used.has(id); i++) id = `${base}_${i}`;
  return id;
}

function idOf(ids: MermaidIds, node: AnyStateNode): string {
  return ids.states.get(node) ?? (node.path.join('_') || node.key);
}

// ---------------------------------------------------------------- json

function stateToJSON(node: AnyStateNode): StateJSON {
  const json: StateJSON = { path: node.path.join('.'), type: node.type, transitions: [] };
  if (node.type === 'compound') {
    const initial = node.initial?.target[0];
    if (initial) json.initial = initial.key;
  }
  const invoke = node.invoke.map((inv) => ({ id: inv.id, src: actorName(inv) }));
  if (invoke.length > 0) json.invoke = invoke;
  for (const t of describeTransitions(node)) {
    if (t.targets.length === 0) json.transitions.push({ ...t.json, target: null });
    for (const target of t.targets) json.transitions.push({ ...t.json, target: target.path.join('.') });
  }
  const children = childNodes(node);
  if (children.length > 0) json.states = Object.fromEntries(children.map((c) => [c.key, stateToJSON(c)]));
  return json;
}

// ---------------------------------------------------------------- shared walk

function childNodes(node: AnyStateNode): AnyStateNode[] {
  return Object.values(node.states ?? {}) as AnyStateNode[];
}

/**
 * XState keys delayed, invoke and done transitions by internal event types (`xstate.after.…`,
 * `xstate.done.actor.…`); they are mapped back to the `after` / `invoke` definitions they came from.
 */
function describeTransitions(node: AnyStateNode): DescribedTransition[] {
  const delays = new Map<string, number | string>();
  for (const a of node.after) delays.set(a.eventType, typeof a.delay === 'function' ? a.delay.name || 'delay' : a.delay);
  const actors = new Map<string, { kind: 'done' | 'error' | 'snapshot'; actor: string }>();
  for (const inv of node.invoke) {
    const actor = actorName(inv);
    actors.set(`xstate.done.actor.${inv.id}`, { kind: 'done', actor });
    actors.set(`xstate.error.actor.${inv.id}`, { kind: 'error', actor });
    actors.set(`xstate.snapshot.actor.${inv.id}`, { kind: 'snapshot', actor });
  }

  const out: DescribedTransition[] = [];
  const add = (t: AnyTransitionDefinition, json: Omit<TransitionJSON, 'target' | 'guard'>) => {
    const guard = guardName(t.guard);
    out.push({
      label: guard ? `${json.event} [${guard}]` : json.event,
      json: guard ? { ...json, guard } : json,
      targets: [...(t.target ?? [])],
    });
  };
  for (const [eventType, transitions] of node.transitions) {
    for (const t of transitions) {
      const delay = delays.get(eventType);
      const invoked = actors.get(eventType);
      if (delay !== undefined) {
        add(t, { event: `after ${typeof delay === 'number' ? formatDelay(delay) : delay}`, kind: 'after', delay });
      } else if (invoked) {
        const name = { done: 'onDone', error: 'onError', snapshot: 'onSnapshot' }[invoked.kind];
        add(t, { event: `${name}(${invoked.actor})`, kind: invoked.kind, actor: invoked.actor });
      } else if (eventType.startsWith('xstate.done.state.')) {
        add(t, { event: 'onDone', kind: 'done' });
      } else {
        add(t, { event: eventType, kind: 'event' });
      }
    }
  }
  for (const t of node.always ?? []) add(t, { event: 'always', kind: 'always' });
  return out;
}

function actorName(inv: { id: string; src: unknown }): string {
  if (typeof inv.src === 'string') return inv.src;
  // Generated ids look like `0.block.storing`; a user-given id is a better name than that.
  return /^\d+\./.test(inv.id) ? 'actor' : inv.id;
}

/** `'isFull'`, `not(isFull)`, `and(a, b)`, `stateIn(stopping)`, `{ type: 'x' }` → `x`; an inline function by its name. */
function guardName(guard: unknown): string | undefined {
  if (guard === undefined || guard === null) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const fn = guard as { name: string; guards?: unknown[]; stateValue?: unknown };
    // xstate's not/and/or/stateIn return functions named after themselves carrying their operands.
    if (Array.isArray(fn.guards)) return `${fn.name}(${fn.guards.map((g) => guardName(g) ?? 'guard').join(', ')})`;
    if (fn.stateValue !== undefined) {
      return `${fn.name}(${typeof fn.stateValue === 'string' ? fn.stateValue : JSON.stringify(fn.stateValue)})`;
    }
    return fn.name || 'guard';
  }
  if (typeof guard === 'object' && typeof (guard as { type?: unknown }).type === 'string') return (guard as { type: string }).type;
  return 'guard';
}

/** 500 → `500ms`, 30000 → `30s`, 5400000 → `1h30m`. */
function formatDelay(ms: number): string {
  if (!Number.isInteger(ms) || ms <= 0 || ms % 1000 !== 0) return `${ms}ms`;
  let s = ms / 1000;
  const parts: string[] = [];
  for (const [unit, size] of [['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  return parts.join('');
}

// ---------------------------------------------------------------- graphviz

/**
 * A Graphviz `digraph` of the machine, from the same description as the JSON: compound states become
 * clusters, final states double circles, initial states an arrow from a point. An edge to or from a
 * compound state attaches to its initial leaf; transitions declared on the machine root start from an
 * "any state" node, as in the Mermaid drawing.
 */
export function machineToDot(machine: AnyStateMachine): string {
  const json = machineToJSON(machine);
  const byPath = new Map<string, StateJSON>();
  const index = (state: StateJSON) => {
    byPath.set(state.path, state);
    for (const child of Object.values(state.states ?? {})) index(child);
  };
  index(json);
  const node = (path: string) => quoteDot(entryPath(byPath.get(path) ?? { path, type: 'atomic', transitions: [] }));
  const lines = [`digraph ${quoteDot(json.id)} {`, '  rankdir=LR;',
    '  compound=true;', '  node [shape=box, style=rounded, fontname="sans-serif"];', '  edge [fontname="sans-serif", fontsize=10];'];
  const edges: string[] = [];

  const declare = (state: StateJSON, depth: number) => {
    const pad = '  '.repeat(depth);
    for (const [key, child] of Object.entries(state.states ?? {})) {
      if (child.states) {
        lines.push(`${pad}subgraph ${quoteDot(`cluster_${child.path}`)} {`, `${pad}  label=${quoteDot(key)};`);
        declare(child, depth + 1);
        lines.push(`${pad}}`);
      } else {
        lines.push(`${pad}${quoteDot(child.path)} [label=${quoteDot(key)}${child.type === 'final' ? ', shape=doublecircle' : ''}];`);
      }
    }
    if (state.initial !== undefined && state.states?.[state.initial]) {
      const start = quoteDot(`${state.path || json.id}.(initial)`);
      lines.push(`${pad}${start} [shape=point, label=""];`);
      edges.push(`  ${start} -> ${node(state.states[state.initial]!.path)};`);
    }
  };
  // With compound=true, ltail / lhead clip an edge at a cluster's border: it leaves or enters the state itself.
  const clusterOf = (path: string) => (byPath.get(path)?.states ? quoteDot(`cluster_${path}`) : undefined);
  const connect = (state: StateJSON) => {
    for (const t of state.transitions) {
      if (t.target === null) continue;
      const from = state.path === '' ? quoteDot('any state') : node(state.path);
      const attributes = [`label=${quoteDot(t.guard ? `${t.event} [${t.guard}]` : t.event)}`];
      // An edge into the state's own children cannot leave its border.
      const inside = state.path !== '' && t.target.startsWith(`${state.path}.`);
      const tail = state.path === '' || inside ? undefined : clusterOf(state.path);
      const head = clusterOf(t.target);
      if (tail) attributes.push(`ltail=${tail}`);
      if (head && head !== tail) attributes.push(`lhead=${head}`);
      edges.push(`  ${from} -> ${node(t.target)} [${attributes.join(', ')}];`);
    }
    for (const child of Object.values(state.states ?? {})) connect(child);
  };

  declare(json, 1);
  if (json.transitions.some((t) => t.target !== null)) lines.push(`  ${quoteDot('any state')} [shape=plaintext];`);
  connect(json);
  lines.push(...edges, '}');
  return lines.join('\n');
}

/** The leaf an edge to or from a state attaches to: the state itself, or its initial leaf for clusters. */
function entryPath(state: StateJSON): string {
  let current = state;
  while (current.states && current.initial !== undefined && current.states[current.initial]) current = current.states[current.initial]!;
  return current.path;
}

function quoteDot(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
