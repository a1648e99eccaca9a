/* beatra console. Plain JS, no build step. Everything it shows comes from beatra's public API,
 * called with the key the user pasted (sessionStorage, sent only as an Authorization header).
 * API strings reach the page through textContent only: nothing from the API is parsed as HTML. */
'use strict';

(() => {
  const KEY_STORE = 'beatra.console.key';
  const PAGES = ['overview', 'tasks', 'create', 'chat', 'uploads'];
  const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);
  // Task-only models: they live on the Create page, not in the chat picker.
  const TASK_MODELS = new Set(['gpt-image-2', 'minimax-music-2.6', 'suno-5.5']);
  const MAX_UPLOAD = 100 * 1024 * 1024;
  // Limits the API enforces (beatra/music/options.py); checked here first so the user sees
  // the problem next to the field before anything is sent.
  const LIMITS = {
    imagePrompt: 4000, minimaxPrompt: 2000, minimaxLyrics: 3500,
    sunoDescription: 500, sunoCoverDescription: 400, sunoLyrics: 5000, sunoStyle: 1000,
  };

  const $ = (id) => document.getElementById(id);
  let current = null;

  // --- DOM helpers ------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false || c === '') continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  /** Only http(s) URLs become href/src (a javascript: URL from anywhere must never run). */
  function safeUrl(value) {
    if (typeof value !== 'string') return null;
    try {
      const url = new URL(value, location.href);
      return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
    } catch (err) {
      console.warn('unusable URL from the API', value, err);
      return null;
    }
  }

  function fmtTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
  }

  function fmtBytes(n) {
    if (n == null) return '';
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  function fmtDuration(ms) {
    if (ms == null) return '';
    const s = Math.round(ms / 1000);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }

  function newIdempotencyKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return `console-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
  }

  // Exact sums of the API's decimal strings (credits are never floats on the wire).
  function scaleOf(v) { return (v.split('.')[1] || '').length; }
  function toBig(v, scale) {
    const neg = v.startsWith('-');
    const [i, f = ''] = v.replace(/^[-+]/, '').split('.');
    const b = BigInt((i || '0') + f.padEnd(scale, '0'));
    return neg ? -b : b;
  }
  function addDecimals(values) {
    const scale = Math.max(0, ...values.map(scaleOf));
    const sum = values.reduce((acc, v) => acc + toBig(v, scale), 0n);
    const neg = sum < 0n;
    const digits = (neg ? -sum : sum).toString().padStart(scale + 1, '0');
    const text = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
    return (neg ? '-' : '') + text;
  }

  // --- the API ----------------------------------------------------------------------------

  const auth = {
    get: () => sessionStorage.getItem(KEY_STORE),
    set: (key) => sessionStorage.setItem(KEY_STORE, key),
    clear: () => sessionStorage.removeItem(KEY_STORE),
  };

  class ApiError extends Error {
    constructor(status, body, requestId) {
      const e = (body && body.error) || {};
      super(e.message || (status ? `The server answered HTTP ${status}.` : 'Request failed.'));
      this.status = status;
      this.code = e.code || null;
      this.param = e.param || null;
      this.requestId = e.request_id || requestId || null;
    }
  }

  async function readJson(resp) {
    const text = await resp.text();
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch (err) {
      // Not our envelope (a proxy's page?): the status and request id are still shown.
      console.warn('non-JSON response body', resp.status, err);
      return null;
    }
  }

  async function api(method, path, opts = {}) {
    const headers = { Authorization: `Bearer ${auth.get()}` };
    let body;
    if (opts.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.json);
    }
    if (opts.idempotencyKey) headers['Idempotency-Key'] = opts.idempotencyKey;
    let resp;
    try {
      resp = await fetch(path, { method, headers, body, cache: 'no-store', signal: opts.signal });
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new ApiError(0, { error: { message: `Could not reach the server (${err.message}).` } });
    }
    const requestId = resp.headers.get('X-Request-Id');
    if (!resp.ok) {
      const err = new ApiError(resp.status, await readJson(resp), requestId);
      if (resp.status === 401) signedOut(err);
      throw err;
    }
    if (opts.raw) return resp;
    return readJson(resp);
  }

  function errorBox(err) {
    const meta = [];
    if (err.code) meta.push(err.code);
    if (err.status) meta.push(`HTTP ${err.status}`);
    if (err.param) meta.push(`field ${err.param}`);
    const rid = err.requestId
      ? [meta.length ? ' · ' : '', 'Request id: ', h('code', { class: 'request-id', text: err.requestId })]
      : [];
    return h('div', { class: 'error', role: 'alert' },
      h('strong', { text: err.message || String(err) }),
      meta.length || rid.length ? h('span', { class: 'meta' }, meta.join(' · '), rid) : null);
  }

  function showError(container, err) {
    if (!(err instanceof ApiError)) console.error(err);
    container.replaceChildren(errorBox(err));
  }

  function notice(text, err) {
    return h('p', { class: 'notice', role: 'status' }, text,
      err && err.requestId ? [' (request id ', h('code', { text: err.requestId }), ')'] : null);
  }

  const notBuilt = (err) => err instanceof ApiError && err.status === 404;

  // --- sign in / out and pages --------------------------------------------------------------

  function showPage(name) {
    for (const section of document.querySelectorAll('.page')) {
      section.hidden = section.id !== `page-${name}`;
    }
    for (const link of document.querySelectorAll('[data-nav]')) {
      if (link.dataset.nav === name) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    $('nav').hidden = name === 'signin';
    $('signout').hidden = name === 'signin';
    if (current === name) return;
    const previous = current;
    current = name;
    if (previous === 'tasks') clearTimeout(tasks.timer);
    document.title = `${name === 'signin' ? 'Sign in' : name[0].toUpperCase() + name.slice(1)} · beatra console`;
    ({ overview: loadOverview, tasks: loadTasks, create: loadPickers, chat: loadModels,
      uploads: loadUploads })[name]?.();
  }

  function route() {
    if (!auth.get()) { showPage('signin'); return; }
    const wanted = location.hash.slice(1);
    if (PAGES.includes(wanted)) showPage(wanted);
    else if (!current || current === 'signin') showPage('overview');
  }

  async function signIn(key) {
    // Another key in the same tab (a second #key= link): nothing of the first one stays shown.
    if (auth.get() && auth.get() !== key) resetState();
    auth.set(key);
    $('signin-error').replaceChildren();
    try {
      await api('GET', '/v1/tasks?limit=1');  // any authenticated call proves the key
    } catch (err) {
      auth.clear();
      showPage('signin');
      showError($('signin-error'), err);
      return;
    }
    $('signin-key').value = '';
    if (!PAGES.includes(location.hash.slice(1))) history.replaceState(null, '', '#overview');
    route();
    $('main').focus();
  }

  /** Reads `#key=…`, then removes it from the address bar (and history) before anything else. */
  function takeKeyFromFragment() {
    const match = /^#key=(.+)$/.exec(location.hash);
    if (!match) return null;
    history.replaceState(null, '', `${location.pathname}${location.search}#overview`);
    try {
      return decodeURIComponent(match[1]).trim();
    } catch (err) {
      console.warn('undecodable key fragment', err);
      return match[1].trim();
    }
  }

  function resetState() {
    clearTimeout(tasks.timer);
    tasks.cards.clear();
    tasks.stack = [];
    tasks.cursor = null;
    $('tasks-filter').reset();
    $('task-list').replaceChildren();
    $('chat-log').replaceChildren();
    chat.messages = [];
    chat.modelsLoaded = false;
    chat.controller?.abort();
    $('uploads-table').tBodies[0].replaceChildren();
    for (const id of ['ov-balance', 'ov-reserved', 'ov-spent', 'ov-limit']) $(id).textContent = '…';
    for (const id of ['ov-key', 'ov-name']) $(id).textContent = '';
    for (const id of ['flash', 'ov-account-msg', 'ov-usage-msg', 'ov-chart', 'tasks-msg', 'uploads-msg']) {
      $(id).replaceChildren();
    }
    current = null;
  }

  function signedOut(err) {
    auth.clear();
    resetState();
    showPage('signin');
    if (err) showError($('signin-error'), err);
  }

  // --- overview ---------------------------------------------------------------------------

  async function loadOverview() {
    const msg = $('ov-account-msg');
    msg.replaceChildren();
    loadUsage();
    try {
      const acct = await api('GET', '/v1/account');
      const key = acct.key || {};
      $('ov-name').textContent = acct.name ? `Account: ${acct.name}` : 'Account';
      $('ov-balance').textContent = acct.balance;
      $('ov-reserved').textContent = acct.reserved;
      $('ov-spent').textContent = key.spent ?? '—';
      $('ov-limit').textContent = key.credit_limit ?? 'no limit';
      $('ov-key').textContent = [
        `Account ${acct.account_id}`, key.key_id && `key ${key.key_id}${key.name ? ` (${key.name})` : ''}`,
        key.expires_at ? `expires ${fmtTime(key.expires_at)}` : 'never expires',
      ].filter(Boolean).join(' · ');
    } catch (err) {
      for (const id of ['ov-balance', 'ov-reserved', 'ov-spent', 'ov-limit']) $(id).textContent = '—';
      if (notBuilt(err)) {
        msg.replaceChildren(notice('Balance and key details are not available on this server '
          + '(GET /v1/account answered 404).', err));
      } else if (err.status !== 401) showError(msg, err);
    }
  }

  function isoDay(d) { return d.toISOString().slice(0, 10); }

  async function loadUsage() {
    const msg = $('ov-usage-msg');
    const chart = $('ov-chart');
    msg.replaceChildren();
    const now = new Date();
    const days = [];
    for (let i = 29; i >= 0; i--) {
      days.push(isoDay(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - i))));
    }
    const to = isoDay(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)));
    const query = new URLSearchParams({ group_by: 'day', from: days[0], to });
    try {
      const res = await api('GET', `/v1/usage?${query}`);
      drawChart(chart, days, res.data || []);
    } catch (err) {
      chart.replaceChildren();
      if (notBuilt(err)) {
        msg.replaceChildren(notice('Usage history is not available on this server '
          + '(GET /v1/usage answered 404).', err));
      } else if (err.status !== 401) showError(msg, err);
    }
  }

  function drawChart(container, days, rows) {
    const byDay = new Map(rows.map((r) => [r.group, r]));
    const credits = days.map((d) => (byDay.get(d) ? byDay.get(d).credits : '0'));
    const heights = credits.map(Number);  // for drawing only; figures shown are the strings
    const max = Math.max(...heights, 0);
    const NS = 'http://www.w3.org/2000/svg';
    const W = 600, H = 160, pad = 18, bw = (W - 2) / days.length;
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `Credits per day from ${days[0]} to ${days[days.length - 1]}`);
    const axis = document.createElementNS(NS, 'line');
    Object.entries({ x1: 0, x2: W, y1: H - pad, y2: H - pad, class: 'axis' })
      .forEach(([k, v]) => axis.setAttribute(k, v));
    svg.append(axis);
    days.forEach((day, i) => {
      const height = max > 0 ? ((H - pad - 4) * heights[i]) / max : 0;
      const rect = document.createElementNS(NS, 'rect');
      Object.entries({ x: 1 + i * bw + 1, y: H - pad - height, width: Math.max(bw - 2, 1), height, class: 'bar' })
        .forEach(([k, v]) => rect.setAttribute(k, v));
      const title = document.createElementNS(NS, 'title');
      title.textContent = `${day}: ${credits[i]} credits`;
      rect.append(title);
      svg.append(rect);
      if (i % 7 === 0 || (i === days.length - 1 && i % 7 >= 3)) {
        const label = document.createElementNS(NS, 'text');
        label.setAttribute('x', 1 + i * bw);
        label.setAttribute('y', H - 4);
        label.textContent = day.slice(5);
        svg.append(label);
      }
    });
    const used = days.filter((d) => byDay.has(d));
    const table = h('table', { class: 'chart-table' },
      h('thead', {}, h('tr', {}, ['Day', 'Requests', 'Credits', 'Input tokens', 'Output tokens']
        .map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, used.map((d) => {
        const r = byDay.get(d);
        return h('tr', {}, [d, r.requests, r.credits, r.input_tokens, r.output_tokens]
          .map((v) => h('td', { text: v == null ? '' : String(v) })));
      })));
    const total = addDecimals(credits);
    container.replaceChildren(svg,
      h('p', { class: 'hint', id: 'ov-usage-total' }, `Total over 30 days: ${total} credits`),
      used.length ? h('details', {}, h('summary', {}, 'Per-day figures'), table)
        : h('p', { class: 'hint', text: 'No usage in the last 30 days.' }));
  }

  // --- tasks ------------------------------------------------------------------------------

  const tasks = { cursor: null, stack: [], next: null, cards: new Map(), timer: null, seq: 0 };

  function taskQuery() {
    const q = new URLSearchParams({ limit: '20', expand: 'output,usage,billing,callback' });
    if ($('tasks-status').value) q.set('status', $('tasks-status').value);
    if ($('tasks-capability').value) q.set('capability', $('tasks-capability').value);
    if (tasks.cursor) q.set('cursor', tasks.cursor);
    return q;
  }

  async function loadTasks() {
    clearTimeout(tasks.timer);
    const seq = ++tasks.seq;
    try {
      const page = await api('GET', `/v1/tasks?${taskQuery()}`);
      if (seq !== tasks.seq) return;
      $('tasks-msg').replaceChildren();
      renderTasks(page.data);
      tasks.next = page.has_more ? page.next_cursor : null;
      $('tasks-more').disabled = !tasks.next;
      $('tasks-first').disabled = tasks.stack.length === 0 && !tasks.cursor;
      $('tasks-empty').hidden = page.data.length > 0;
      // Live progress: poll quickly while something runs, slowly otherwise (new tasks appear).
      const live = page.data.some((t) => !TERMINAL.has(t.status));
      if (current === 'tasks') tasks.timer = setTimeout(loadTasks, live ? 1000 : 10000);
    } catch (err) {
      if (seq !== tasks.seq || err.status === 401) return;
      showError($('tasks-msg'), err);
      if (current === 'tasks') tasks.timer = setTimeout(loadTasks, 5000);
    }
  }

  // A card is rebuilt only when what it shows changes, so a playing <audio> keeps playing
  // while the list polls (content URLs differ on every read; they are not part of this).
  function taskSignature(t) {
    const cb = t.callback;
    return JSON.stringify([t.status, t.progress, t.error, t.warnings, t.billing, t.usage && t.usage.credits,
      Boolean(t.output), t.cancel_requested_at,
      cb && [cb.status, cb.attempt_count, cb.delivered_at, cb.last_error]]);
  }

  function renderTasks(list) {
    const ol = $('task-list');
    const els = list.map((t) => {
      const sig = taskSignature(t);
      let entry = tasks.cards.get(t.task_id);
      if (!entry || entry.sig !== sig) {
        entry = { sig, el: taskCard(t) };
        tasks.cards.set(t.task_id, entry);
      }
      return entry.el;
    });
    const keep = new Set(els);
    for (const child of [...ol.children]) if (!keep.has(child)) child.remove();
    let ref = ol.firstChild;
    for (const el of els) {
      if (el === ref) ref = ref.nextSibling;
      else ol.insertBefore(el, ref);
    }
    const ids = new Set(list.map((t) => t.task_id));
    for (const id of [...tasks.cards.keys()]) if (!ids.has(id)) tasks.cards.delete(id);
  }

  function replaceCard(t) {
    const old = tasks.cards.get(t.task_id);
    const entry = { sig: taskSignature(t), el: taskCard(t) };
    tasks.cards.set(t.task_id, entry);
    if (old && old.el.isConnected) old.el.replaceWith(entry.el);
  }

  function taskCard(t) {
    const li = h('li', { class: 'task', dataset: { taskId: t.task_id, status: t.status } });
    const msg = h('div', { class: 'task-msg' });
    li.append(h('div', { class: 'task-head' },
      h('span', { class: 'mono', text: t.task_id }),
      h('span', { class: `badge ${t.status}`, text: t.status }),
      h('span', { text: t.capability }),
      h('span', { class: 'muted', text: t.resolved_model || t.model }),
      h('span', { class: 'muted', text: fmtTime(t.created_at) })));
    if (!TERMINAL.has(t.status)) {
      const p = t.progress || {};
      const bar = h('progress', { max: 100, 'aria-label': `Progress of ${t.task_id}` });
      if (p.percent != null) bar.value = p.percent;  // no value: an indeterminate bar
      li.append(bar,
        h('p', { class: 'hint', text: [p.stage, p.message, p.percent != null ? `${p.percent}%` : null]
          .filter(Boolean).join(' — ') || t.status }),
        h('button', { type: 'button', class: 'danger', onclick: () => cancelTask(t, msg) },
          t.cancel_requested_at ? 'Cancel requested…' : 'Cancel'));
    }
    if (t.error) {
      li.append(h('div', { class: 'error' }, h('strong', { text: t.error.message }),
        h('span', { class: 'meta', text: `${t.error.code}${t.error.retryable ? ' · retryable' : ''}` })));
    }
    for (const w of t.warnings || []) li.append(h('p', { class: 'notice', text: `${w.code}: ${w.message}` }));
    if (t.output) li.append(outputView(t));
    if (t.billing || t.usage) li.append(billingView(t));
    if (t.callback) li.append(callbackView(t, msg));
    li.append(msg);
    return li;
  }

  function outputView(t) {
    const box = h('div', { class: 'media' });
    (t.output.images || []).forEach((img, i) => {
      const url = safeUrl(img.url);
      if (!url) return;
      box.append(h('figure', {},
        h('img', { src: url, alt: `Image ${i + 1} of task ${t.task_id}`, width: img.width, height: img.height }),
        h('figcaption', {}, h('a', { href: url, download: `${img.artifact_id || t.task_id}` }, 'Download'),
          ` ${img.width || '?'}×${img.height || '?'} ${img.mime_type || ''}`)));
    });
    (t.output.tracks || []).forEach((track, i) => {
      const url = safeUrl(track.url);
      if (!url) return;
      box.append(h('figure', {},
        h('figcaption', { text: track.title || `Track ${i + 1}` }),
        h('audio', { controls: true, preload: 'metadata', src: url, 'aria-label': track.title || `Track ${i + 1}` }),
        h('a', { href: url, download: `${track.artifact_id || t.task_id}` }, 'Download'),
        ` ${fmtDuration(track.duration_ms)} ${track.mime_type || ''}`));
    });
    return box;
  }

  function billingView(t) {
    const b = t.billing || {};
    const lines = (t.usage && t.usage.lines) || [];
    const summary = b.charged_credits != null ? `Billing: ${b.charged_credits} credits charged`
      : `Billing: ${b.reserved_credits ?? '—'} credits reserved`;
    return h('details', { class: 'billing' }, h('summary', { text: summary }),
      h('dl', { class: 'stats' },
        [['Reserved', b.reserved_credits], ['Charged', b.charged_credits], ['Refunded', b.refunded_credits],
          ['USD reference', b.charged_credits_usd_reference]]
          .filter(([, v]) => v != null)
          .map(([k, v]) => h('div', {}, h('dt', { text: k }), h('dd', { text: v })))),
      lines.length ? h('table', {},
        h('thead', {}, h('tr', {}, ['Meter', 'Quantity', 'Unit', 'Credits']
          .map((x) => h('th', { scope: 'col', text: x })))),
        h('tbody', {}, lines.map((l) => h('tr', {},
          [l.meter, l.quantity, l.unit, l.billed_amount_credits ?? ''].map((v) => h('td', { text: String(v) })))))) : null);
  }

  function callbackView(t, msg) {
    const cb = t.callback;
    const box = h('div', { class: 'callback' },
      h('p', {}, 'Webhook: ', h('strong', { class: 'callback-status', text: cb.status }),
        ` after ${cb.attempt_count} attempt${cb.attempt_count === 1 ? '' : 's'}`,
        cb.delivered_at ? ` · delivered ${fmtTime(cb.delivered_at)}` : '',
        ` · ${cb.url}`));
    if (cb.last_error) box.append(h('p', { class: 'hint', text: `Last error: ${cb.last_error}` }));
    if (TERMINAL.has(t.status)) {
      box.append(h('button', { type: 'button', class: 'secondary', onclick: (e) => redeliver(t, msg, e.target) },
        'Redeliver webhook'));
    }
    return box;
  }

  async function cancelTask(t, msg) {
    try {
      replaceCard(await api('POST', `/v1/tasks/${encodeURIComponent(t.task_id)}/cancel`,
        { json: { reason: 'canceled from the console' }, idempotencyKey: newIdempotencyKey() }));
      loadTasks();
    } catch (err) {
      showError(msg, err);
    }
  }

  async function redeliver(t, msg, button) {
    button.disabled = true;
    try {
      replaceCard(await api('POST', `/v1/tasks/${encodeURIComponent(t.task_id)}/callback/redeliver`,
        { idempotencyKey: newIdempotencyKey() }));
    } catch (err) {
      button.disabled = false;
      showError(msg, err);
    }
  }

  // --- create -----------------------------------------------------------------------------

  function fieldErrorTarget(form, param) {
    // The field the JSON Pointer names, else its nearest named parent (/image/artifact_id → /image).
    for (let p = param; p; p = p.slice(0, p.lastIndexOf('/'))) {
      const el = form.querySelector(`[data-param="${CSS.escape(p)}"]`);
      if (el) return el;
    }
    return null;
  }

  function clearFieldErrors(form) {
    for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    form.querySelector('.form-error').replaceChildren();
  }

  /** Shows each message next to its field; returns the messages no field claimed. */
  function showFieldErrors(form, errors) {
    const left = [];
    let first = null;
    for (const [param, message] of Object.entries(errors)) {
      const el = fieldErrorTarget(form, param);
      const slot = el && (document.getElementById(`${el.id}-err`) || el.querySelector('.field-error'));
      if (!slot) { left.push(`${param}: ${message}`); continue; }
      slot.textContent = message;
      el.setAttribute('aria-invalid', 'true');
      if (slot.id) el.setAttribute('aria-describedby', slot.id);
      first = first || el;
    }
    if (first) (first.matches('fieldset') ? first.querySelector('input, select') : first).focus();
    return left;
  }

  function value(form, name) {
    const el = form.elements.namedItem(name);
    return el ? el.value : '';
  }

  function imageBody(form) {
    return {
      model: value(form, 'model'), prompt: value(form, 'prompt'), quality: value(form, 'quality'),
      aspect_ratio: value(form, 'aspect_ratio'), output_format: value(form, 'output_format'),
      n: Number(value(form, 'n')),
    };
  }

  function checkImage(body, errors) {
    if (!body.prompt.trim()) errors['/prompt'] = 'Enter a prompt.';
    else if (body.prompt.length > LIMITS.imagePrompt) {
      errors['/prompt'] = `At most ${LIMITS.imagePrompt} characters (this is ${body.prompt.length}).`;
    }
    if (!Number.isInteger(body.n) || body.n < 1 || body.n > 4) errors['/n'] = 'A whole number from 1 to 4.';
  }

  function family(model) {
    if (model.startsWith('minimax')) return 'minimax';
    if (model.startsWith('suno')) return 'suno';
    return null;  // auto: the server picks, and checks against the model it picks
  }

  function musicBody(form) {
    const body = { model: value(form, 'model'), prompt: value(form, 'prompt') };
    const lyrics = value(form, 'lyrics');
    if (lyrics.trim()) body.lyrics = lyrics;
    body.instrumental = form.elements.namedItem('instrumental').checked;
    if (value(form, 'title').trim()) body.title = value(form, 'title').trim();
    const fam = family(body.model);
    if (fam) {
      const options = {};
      for (const el of form.querySelectorAll(`fieldset[data-family="${fam}"] [data-option]`)) {
        if (el.value === '') continue;
        let v = el.value;
        if (el.dataset.type === 'int') v = Number.parseInt(v, 10);
        else if (el.dataset.type === 'float') v = Number(v);
        else if (el.dataset.type === 'bool') v = v === 'true';
        const path = el.dataset.option.split('.').slice(1);
        let node = options;
        path.slice(0, -1).forEach((k) => { node = node[k] = node[k] || {}; });
        node[path[path.length - 1]] = v;
      }
      if (Object.keys(options).length) body.model_options = { [fam]: options };
    }
    return body;
  }

  function checkMusic(body, cover, errors) {
    const { prompt } = body;
    const lyrics = body.lyrics || null;
    if (!prompt.trim()) { errors['/prompt'] = 'Enter a prompt.'; return; }
    if (body.instrumental && lyrics) errors['/lyrics'] = 'Leave the lyrics empty for instrumental music.';
    const fam = family(body.model);
    const opts = (body.model_options && body.model_options[fam]) || {};
    if (fam === 'minimax') {
      if (prompt.length > LIMITS.minimaxPrompt) {
        errors['/prompt'] = `MiniMax takes at most ${LIMITS.minimaxPrompt} characters (this is ${prompt.length}).`;
      }
      if (lyrics && lyrics.length > LIMITS.minimaxLyrics) {
        errors['/lyrics'] = `MiniMax takes at most ${LIMITS.minimaxLyrics} characters of lyrics.`;
      }
      if (cover && body.instrumental) {
        errors['/instrumental'] = 'MiniMax covers keep the vocals; use suno-5.5 for an instrumental cover.';
      }
      if (!cover && !body.instrumental && !lyrics && opts.lyrics_optimizer === false) {
        errors['/model_options/minimax/lyrics_optimizer'] = 'Without lyrics, let MiniMax write them (or make it instrumental).';
      }
    } else if (fam === 'suno') {
      const custom = Boolean(lyrics) || body.instrumental;
      if (!custom) {
        const limit = cover ? LIMITS.sunoCoverDescription : LIMITS.sunoDescription;
        if (prompt.length > limit) {
          errors['/prompt'] = `Without lyrics Suno takes a description of at most ${limit} characters; add lyrics or make it instrumental.`;
        }
      } else {
        const style = opts.style || prompt;
        if (style.length > LIMITS.sunoStyle) {
          errors[opts.style ? '/model_options/suno/style' : '/prompt'] = `The style is at most ${LIMITS.sunoStyle} characters.`;
        }
        if (lyrics && lyrics.length > LIMITS.sunoLyrics) errors['/lyrics'] = `Suno takes at most ${LIMITS.sunoLyrics} characters of lyrics.`;
      }
      for (const k of ['style_weight', 'weirdness_constraint', 'audio_weight']) {
        if (k in opts && !(Number.isFinite(opts[k]) && opts[k] >= 0 && opts[k] <= 1)) {
          errors[`/model_options/suno/${k}`] = 'A number from 0 to 1.';
        }
      }
    }
  }

  async function mediaSource(form, param, purpose, errors) {
    const file = form.querySelector('[data-source-file]');
    const picked = form.querySelector('[data-source-artifact]');
    if (file.files.length) {
      const result = form.querySelector('.form-result');
      const art = await uploadFile(file.files[0], purpose, (f) => {
        result.textContent = `Uploading ${Math.round(f * 100)}%…`;
      });
      result.textContent = `Uploaded as ${art.artifact_id}.`;
      file.value = '';
      // Listed in the picker from now on, so a retry does not upload the file again.
      pickers.loaded = false;
      await loadPickers();
      if ([...picked.options].some((o) => o.value === art.artifact_id)) picked.value = art.artifact_id;
      return { type: 'artifact', artifact_id: art.artifact_id };
    }
    if (picked.value) return { type: 'artifact', artifact_id: picked.value };
    errors[param] = 'Choose a file to upload or pick an uploaded one.';
    return null;
  }

  async function submitCreate(event) {
    event.preventDefault();
    const form = event.target;
    const kind = form.dataset.kind;
    clearFieldErrors(form);
    const result = form.querySelector('.form-result');
    result.replaceChildren();
    const errors = {};
    const isImage = kind === 't2i' || kind === 'i2i';
    const body = isImage ? imageBody(form) : musicBody(form);
    if (isImage) checkImage(body, errors); else checkMusic(body, kind === 'r2m', errors);
    const mediaParam = { i2i: '/image', r2m: '/reference_audio' }[kind];
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      if (Object.keys(errors).length === 0 && mediaParam) {
        const media = await mediaSource(form, mediaParam, kind === 'r2m' ? 'reference_audio' : 'media_input', errors);
        if (media) body[mediaParam.slice(1)] = media;
      }
      if (Object.keys(errors).length) {
        const left = showFieldErrors(form, errors);
        if (left.length) form.querySelector('.form-error').replaceChildren(h('div', { class: 'error', text: left.join(' ') }));
        return;
      }
      // One key per intended submission: a retry after a lost answer cannot create a second
      // task; editing the form starts a new one.
      form.dataset.idem = form.dataset.idem || newIdempotencyKey();
      const task = await api('POST', form.dataset.endpoint, { json: body, idempotencyKey: form.dataset.idem });
      delete form.dataset.idem;
      result.replaceChildren(h('p', { class: 'notice', role: 'status' },
        'Task ', h('code', { class: 'created-task', text: task.task_id }), ` is ${task.status}. `,
        h('a', { href: '#tasks' }, 'Watch it in Tasks')),
      ...(task.warnings || []).map((w) => h('p', { class: 'notice', text: `${w.code}: ${w.message}` })));
    } catch (err) {
      if (err.param) showFieldErrors(form, { [err.param]: err.message });
      showError(form.querySelector('.form-error'), err);
    } finally {
      button.disabled = false;
    }
  }

  function syncMusicFamily(form) {
    const fam = family(value(form, 'model'));
    for (const fs of form.querySelectorAll('fieldset[data-family]')) fs.hidden = fs.dataset.family !== fam;
  }

  const pickers = { loaded: false };

  async function loadPickers() {
    if (pickers.loaded) return;
    try {
      const res = await api('GET', '/v1/uploads?limit=100');
      pickers.loaded = true;
      for (const select of document.querySelectorAll('[data-source-artifact]')) {
        const chosen = select.value;
        select.replaceChildren(h('option', { value: '' }, '—'),
          ...res.data.filter((a) => a.media_type === select.dataset.media).map((a) => h('option',
            { value: a.artifact_id }, `${a.artifact_id} · ${a.mime_type} · ${fmtBytes(a.size_bytes)}`)));
        select.value = chosen;
      }
    } catch (err) {
      if (notBuilt(err)) return;  // older server: uploading a file still works
      if (err.status !== 401) showError($('flash'), err);
    }
  }

  // --- chat -------------------------------------------------------------------------------

  const chat = { messages: [], controller: null, modelsLoaded: false };

  async function loadModels() {
    if (chat.modelsLoaded) return;
    const select = $('chat-model');
    try {
      const res = await api('GET', '/v1/models');
      const ids = res.data.map((m) => m.id).filter((id) => !TASK_MODELS.has(id));
      const chosen = select.value;
      select.replaceChildren(...ids.map((id) => h('option', { value: id, text: id })));
      if (ids.includes(chosen)) select.value = chosen;
      chat.modelsLoaded = true;
    } catch (err) {
      if (err.status !== 401) showError($('chat-error'), err);
    }
  }

  /** Yields each server-sent event ({event, data}) of a streamed response as it arrives. */
  async function* sseEvents(resp) {
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value: chunk, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(chunk, { stream: true });
      const blocks = buffer.split(/\r?\n\r?\n/);
      buffer = done ? '' : blocks.pop();
      for (const block of blocks) {
        let event = 'message';
        const data = [];
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith(':') || !line) continue;  // ": ping" keep-alives
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event = val;
          else if (field === 'data') data.push(val);
        }
        if (data.length) yield { event, data: data.join('\n') };
      }
      if (done) return;
    }
  }

  async function sendChat(event) {
    event.preventDefault();
    const input = $('chat-input');
    const text = input.value.trim();
    $('chat-error').replaceChildren();
    if (!text) {
      $('chat-error').replaceChildren(h('p', { class: 'field-error', text: 'Type a message first.' }));
      input.focus();
      return;
    }
    const model = $('chat-model').value;
    const system = $('chat-system').value.trim();
    const history = [...chat.messages, { role: 'user', content: text }];
    const body = {
      model, stream: true, stream_options: { include_usage: true },
      messages: system ? [{ role: 'system', content: system }, ...history] : history,
    };
    const max = Number.parseInt($('chat-max').value, 10);
    if (Number.isInteger(max) && max > 0) body.max_completion_tokens = max;

    const reasoning = h('div', { class: 'reasoning' });
    const reasoningBox = h('details', { class: 'reasoning-box', open: true, hidden: true },
      h('summary', {}, 'Reasoning'), reasoning);
    const answer = h('div', { class: 'answer' });
    const credits = h('p', { class: 'credits' });
    const status = h('div', { class: 'chat-status' });
    $('chat-log').append(
      h('li', { class: 'turn user' }, h('div', { class: 'role', text: 'You' }), h('div', { class: 'answer', text })),
      h('li', { class: 'turn assistant', 'aria-busy': 'true' }, h('div', { class: 'role', text: model }),
        reasoningBox, answer, credits, status));
    input.value = '';
    chat.controller = new AbortController();
    $('chat-send').disabled = true;
    $('chat-stop').disabled = false;
    let answerText = '';
    try {
      const resp = await api('POST', '/v1/chat/completions', { json: body, raw: true, signal: chat.controller.signal });
      const requestId = resp.headers.get('X-Request-Id');
      for await (const ev of sseEvents(resp)) {
        if (ev.data === '[DONE]') break;
        let obj;
        try {
          obj = JSON.parse(ev.data);
        } catch (err) {
          throw new ApiError(0, { error: { message: `Unreadable stream event: ${err.message}` } }, requestId);
        }
        if (ev.event === 'error' || obj.error) throw new ApiError(resp.status, obj, requestId);
        const delta = (obj.choices && obj.choices[0] && obj.choices[0].delta) || {};
        if (delta.reasoning_content) {
          reasoningBox.hidden = false;
          reasoning.append(delta.reasoning_content);
        }
        if (delta.content) {
          answerText += delta.content;
          answer.append(delta.content);
        }
        if (obj.usage) {
          const u = obj.usage;
          credits.textContent = [u.credits != null ? `${u.credits} credits` : null,
            u.prompt_tokens != null ? `${u.prompt_tokens} tokens in` : null,
            u.completion_tokens != null ? `${u.completion_tokens} out` : null,
            requestId ? `request ${requestId}` : null].filter(Boolean).join(' · ');
        }
      }
      chat.messages = [...history, { role: 'assistant', content: answerText }];
    } catch (err) {
      if (err.name === 'AbortError') status.append(h('p', { class: 'hint', text: 'Stopped.' }));
      else showError(status, err);
      if (answerText) chat.messages = [...history, { role: 'assistant', content: answerText }];
    } finally {
      status.parentElement.removeAttribute('aria-busy');
      chat.controller = null;
      $('chat-send').disabled = false;
      $('chat-stop').disabled = true;
    }
  }

  // --- uploads ----------------------------------------------------------------------------

  /** POST /v1/uploads with XMLHttpRequest: fetch cannot report upload progress. */
  function uploadFile(file, purpose, onProgress) {
    return new Promise((resolve, reject) => {
      if (file.size > MAX_UPLOAD) {
        reject(new ApiError(413, { error: { code: 'payload_too_large',
          message: `${file.name} is ${fmtBytes(file.size)}; uploads are limited to 100 MB.` } }));
        return;
      }
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/v1/uploads');
      xhr.setRequestHeader('Authorization', `Bearer ${auth.get()}`);
      xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
      xhr.addEventListener('load', () => {
        let data = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch (err) {
          console.warn('non-JSON upload response', xhr.status, err);
        }
        if (xhr.status >= 200 && xhr.status < 300 && data) { resolve(data); return; }
        const err = new ApiError(xhr.status, data, xhr.getResponseHeader('X-Request-Id'));
        if (xhr.status === 401) signedOut(err);
        reject(err);
      });
      xhr.addEventListener('error', () => reject(new ApiError(0, { error: { message: 'The upload could not reach the server.' } })));
      xhr.addEventListener('abort', () => reject(new ApiError(0, { error: { message: 'The upload was aborted.' } })));
      const fd = new FormData();
      fd.append('purpose', purpose);
      fd.append('file', file, file.name);
      xhr.send(fd);
    });
  }

  async function startUpload(file) {
    const bar = $('upload-progress');
    const status = $('upload-status');
    $('upload-error').replaceChildren();
    bar.value = 0;
    status.textContent = `Uploading ${file.name} (${fmtBytes(file.size)})…`;
    try {
      const art = await uploadFile(file, $('upload-purpose').value, (f) => { bar.value = Math.round(f * 100); });
      bar.value = 100;
      status.replaceChildren(`Uploaded ${file.name} as `, h('code', { class: 'uploaded-id', text: art.artifact_id }), '.');
      pickers.loaded = false;
      uploads.cursor = null;
      uploads.stack = [];
      loadUploads();
    } catch (err) {
      status.textContent = `Upload of ${file.name} failed.`;
      showError($('upload-error'), err);
    }
  }

  const uploads = { cursor: null, stack: [], next: null };

  async function loadUploads() {
    const q = new URLSearchParams({ limit: '20' });
    if (uploads.cursor) q.set('cursor', uploads.cursor);
    const tbody = $('uploads-table').tBodies[0];
    try {
      const res = await api('GET', `/v1/uploads?${q}`);
      $('uploads-msg').replaceChildren();
      tbody.replaceChildren(...res.data.map((a) => {
        const url = safeUrl(a.cdn_url);
        return h('tr', { dataset: { artifactId: a.artifact_id } },
          h('td', {}, h('code', { text: a.artifact_id })),
          h('td', { text: `${a.media_type} · ${a.mime_type}` }),
          h('td', { text: fmtBytes(a.size_bytes) }),
          h('td', { text: fmtTime(a.created_at) }),
          h('td', {}, url ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, 'Open') : ''));
      }));
      if (!res.data.length) tbody.append(h('tr', {}, h('td', { colspan: 5, text: 'No uploads yet.' })));
      uploads.next = res.has_more ? res.next_cursor : null;
      $('uploads-more').disabled = !uploads.next;
      $('uploads-first').disabled = uploads.stack.length === 0;
    } catch (err) {
      tbody.replaceChildren();
      if (notBuilt(err)) $('uploads-msg').replaceChildren(notice('Listing uploads is not available on this server.', err));
      else if (err.status !== 401) showError($('uploads-msg'), err);
    }
  }

  // --- wiring -----------------------------------------------------------------------------

  function init() {
    $('signin-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const key = $('signin-key').value.trim();
      if (key) signIn(key);
    });
    $('signout').addEventListener('click', () => {
      history.replaceState(null, '', location.pathname);
      signedOut(null);
      $('signin-key').focus();
    });
    $('ov-refresh').addEventListener('click', loadOverview);

    $('tasks-filter').addEventListener('submit', (e) => {
      e.preventDefault();
      tasks.cursor = null;
      tasks.stack = [];
      loadTasks();
    });
    $('tasks-refresh').addEventListener('click', loadTasks);
    $('tasks-more').addEventListener('click', () => {
      if (!tasks.next) return;
      tasks.stack.push(tasks.cursor);
      tasks.cursor = tasks.next;
      loadTasks();
    });
    $('tasks-first').addEventListener('click', () => {
      tasks.cursor = tasks.stack.length ? tasks.stack.pop() : null;
      loadTasks();
    });

    $('create-kind').addEventListener('change', (e) => {
      for (const form of document.querySelectorAll('.create-form')) form.hidden = form.dataset.kind !== e.target.value;
    });
    for (const form of document.querySelectorAll('.create-form')) {
      form.addEventListener('submit', submitCreate);
      form.addEventListener('input', () => { delete form.dataset.idem; });
      const model = form.querySelector('[data-music-model]');
      if (model) {
        model.addEventListener('change', () => syncMusicFamily(form));
        syncMusicFamily(form);
      }
    }

    $('chat-form').addEventListener('submit', sendChat);
    $('chat-input').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) $('chat-form').requestSubmit();
    });
    $('chat-stop').addEventListener('click', () => chat.controller?.abort());
    $('chat-clear').addEventListener('click', () => {
      chat.controller?.abort();
      chat.messages = [];
      $('chat-log').replaceChildren();
    });

    const drop = $('dropzone');
    drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      if (e.dataTransfer.files.length) startUpload(e.dataTransfer.files[0]);
    });
    $('upload-file').addEventListener('change', (e) => {
      if (e.target.files.length) startUpload(e.target.files[0]);
      e.target.value = '';
    });
    $('upload-form').addEventListener('submit', (e) => e.preventDefault());
    $('uploads-more').addEventListener('click', () => {
      if (!uploads.next) return;
      uploads.stack.push(uploads.cursor);
      uploads.cursor = uploads.next;
      loadUploads();
    });
    $('uploads-first').addEventListener('click', () => {
      uploads.cursor = uploads.stack.length ? uploads.stack.pop() : null;
      loadUploads();
    });

    window.addEventListener('hashchange', () => {
      const key = takeKeyFromFragment();
      if (key) signIn(key); else route();
    });
    const key = takeKeyFromFragment();
    if (key) signIn(key); else route();
  }

  init();
})();
