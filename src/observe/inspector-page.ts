/**
 * The inspector page (served by src/observe/inspector.ts): plain HTML, one script, one stylesheet, no
 * framework and nothing from the internet. The script renders the model pushed on `/events`; every
 * value from the capture (ids, subjects, keys) goes into the page through textContent, never as HTML.
 */

export const INSPECTOR_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>jetvault inspector</title>
<link rel="stylesheet" href="inspector.css">
<script src="inspector.js" defer></script>
</head>
<body>
<header>
  <h1>jetvault inspector</h1>
  <span id="summary"></span>
  <span id="link" class="link" data-status="connecting">connecting…</span>
</header>
<main>
  <section>
    <h2>Actors</h2>
    <table id="actors">
      <thead><tr><th>kind</th><th>id</th><th>state</th><th class="num">messages</th><th class="num">age</th><th class="num">in state</th><th>split key / block key</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section>
    <h2>Recent transitions</h2>
    <ol id="transitions"></ol>
  </section>
</main>
</body>
</html>
`;

export const INSPECTOR_SCRIPT = `'use strict';
(() => {
  const tbody = document.querySelector('#actors tbody');
  const list = document.getElementById('transitions');
  const link = document.getElementById('link');
  const summary = document.getElementById('summary');
  let model = null;
  let receivedAt = 0;

  /** An element with text content only: capture data never becomes markup. */
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function duration(ms) {
    if (ms === undefined || ms === null || !isFinite(ms)) return '';
    const s = Math.max(0, ms) / 1000;
    if (s < 60) return s.toFixed(1) + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' m ' + String(Math.floor(s % 60)).padStart(2, '0') + ' s';
    return Math.floor(m / 60) + ' h ' + String(m % 60).padStart(2, '0') + ' m';
  }

  function clock(t) {
    const d = new Date(t);
    return d.toTimeString().slice(0, 8) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }

  /** The model's clock now: its time when pushed plus what elapsed here since. */
  function modelNow() {
    return model.now + (performance.now() - receivedAt);
  }

  /** A CSS class from the first segment of a state ('persisting.storing' → state-persisting). */
  function stateClass(state) {
    return 'state state-' + String(state).split(/[.,]/)[0].replace(/[^a-z-]/gi, '');
  }

  function row(actor, live) {
    const tr = document.createElement('tr');
    tr.dataset.kind = actor.kind;
    tr.dataset.id = actor.id;
    tr.dataset.session = actor.session;
    tr.dataset.state = actor.state;
    tr.dataset.status = actor.status;
    if (!live) tr.className = 'finished';
    tr.append(el('td', actor.kind, 'kind'), el('td', actor.id, 'id'));
    const state = el('td', null, 'state-cell');
    state.append(el('span', actor.state, stateClass(actor.state)));
    if (actor.status !== 'active' && actor.status !== 'done') state.append(el('span', actor.status, 'status'));
    tr.append(state);
    tr.append(el('td', actor.messages, 'num messages'));
    const age = el('td', '', 'num age');
    const inState = el('td', '', 'num in-state');
    tr.append(age, inState);
    const keys = el('td', null, 'keys');
    if (actor.splitKey !== undefined) keys.append(el('span', actor.splitKey, 'split-key'));
    if (actor.key !== undefined) keys.append(el('span', actor.key, 'block-key'));
    tr.append(keys);
    tr._actor = actor;
    tr._live = live;
    return tr;
  }

  function renderTimes() {
    if (!model) return;
    const t = modelNow();
    for (const tr of tbody.children) {
      const a = tr._actor;
      const running = tr._live && a.status === 'active';
      const age = a.openedAt === undefined ? undefined : running ? t - a.openedAt : a.ageMs;
      tr.querySelector('.age').textContent = duration(age);
      tr.querySelector('.in-state').textContent = duration(t - a.since);
    }
  }

  function render() {
    const rows = [];
    for (const a of model.actors) rows.push(row(a, true));
    for (const a of model.finishedBlocks) rows.push(row(a, false));
    tbody.replaceChildren(...rows);
    renderTimes();

    const items = [];
    for (let i = model.transitions.length - 1; i >= 0; i--) {
      const x = model.transitions[i];
      const li = document.createElement('li');
      li.dataset.actor = x.actor;
      li.dataset.to = x.to;
      li.append(
        el('time', clock(x.time)),
        el('span', x.actor, 'actor'),
        el('span', x.from === null ? '∅' : x.from, 'from'),
        el('span', '→', 'arrow'),
        el('span', x.to, stateClass(x.to)),
        el('span', x.event, 'event'),
      );
      items.push(li);
    }
    list.replaceChildren(...items);

    const open = model.actors.filter((a) => a.kind === 'block').length;
    summary.textContent = open + ' open block' + (open === 1 ? '' : 's') + ' · ' + model.finishedBlocks.length + ' finished shown';
  }

  function setLink(status, text) {
    link.dataset.status = status;
    link.textContent = text;
  }

  const source = new EventSource('events');
  source.onopen = () => setLink('live', 'live');
  source.onerror = () => setLink('down', 'reconnecting…');
  source.onmessage = (event) => {
    model = JSON.parse(event.data);
    receivedAt = performance.now();
    render();
  };
  setInterval(renderTimes, 1000);
})();
`;

export const INSPECTOR_STYLE = `:root { color-scheme: light dark; --muted: #777; --line: #8884; font: 14px/1.4 system-ui, sans-serif; }
body { margin: 0; }
header { display: flex; gap: 1.5em; align-items: baseline; padding: .6em 1.2em; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.15em; margin: 0; }
h2 { font-size: 1em; margin: 1.2em 0 .4em; }
main { padding: 0 1.2em 1.2em; }
#summary { color: var(--muted); }
.link { margin-left: auto; padding: .1em .6em; border-radius: 1em; font-size: .9em; background: #8883; }
.link[data-status="live"] { background: #2a7d2e; color: #fff; }
.link[data-status="down"] { background: #b3261e; color: #fff; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .7em; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); }
.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.finished { opacity: .65; }
.keys { white-space: normal; word-break: break-all; }
.keys span { display: block; font-family: ui-monospace, monospace; font-size: .9em; }
.keys .block-key { color: var(--muted); }
.state { font-family: ui-monospace, monospace; padding: 0 .45em; border-radius: .3em; background: #8882; }
.state-open { background: #1e63b433; }
.state-sealing, .state-persisting, .state-acking { background: #c7901233; }
.state-acked { background: #2a7d2e44; }
.state-failed { background: #b3261e55; }
.state-abandoned { background: #7775; }
.status { margin-left: .5em; color: var(--muted); font-size: .9em; }
#transitions { list-style: none; padding: 0; margin: 0; max-height: 24em; overflow-y: auto; font-family: ui-monospace, monospace; font-size: .9em; }
#transitions li { display: flex; gap: .8em; padding: .1em 0; border-bottom: 1px solid var(--line); }
#transitions time, #transitions .event { color: var(--muted); }
#transitions .actor { min-width: 6em; }
`;
