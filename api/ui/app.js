/*
 * lowrankd dashboard: one page for /ui/ (submit, job list) and
 * /ui/jobs/{id} (one job: live progress, results, charts, downloads).
 *
 * Rules this file keeps:
 * - Every value that comes from the server (job ids, layer names from
 *   user-uploaded models, problem details) reaches the page as text:
 *   textContent / createTextNode, or Chart.js, which draws on a canvas.
 *   Nothing is ever assigned to innerHTML.
 * - The bearer token, when the server wants one, lives in sessionStorage
 *   (this tab only) and goes in the Authorization header of fetch() and
 *   XHR calls; never in a URL. That is why the event stream is read with
 *   fetch() streaming rather than EventSource (which cannot set headers),
 *   and downloads go through fetch() and a blob: URL.
 * - Nothing is loaded from other hosts; the CSP (api/ui.c) enforces it.
 */
'use strict';

(function () {
  const TOKEN_KEY = 'lowrankd.token';
  const $ = (id) => document.getElementById(id);

  /* ---------------------------------------------------------------- */
  /* DOM helpers: text only.                                           */

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else if (k === 'title') e.title = v;
        else if (k === 'href') e.href = v;
        else e.setAttribute(k, String(v));
      }
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
    return e;
  }

  function show(e, on) {
    e.hidden = !on;
  }

  function notice(text) {
    const n = $('notice');
    n.textContent = text || '';
    show(n, !!text);
  }

  /* ---------------------------------------------------------------- */
  /* Formatting.                                                       */

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const dash = '–';

  function fmt(v, digits) {
    if (!isNum(v)) return dash;
    if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6)) return v.toExponential(2);
    return v.toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 3 : digits });
  }
  const pct = (v, d) => (isNum(v) ? (v * 100).toFixed(d === undefined ? 1 : d) + '%' : dash);
  const times = (v) => (isNum(v) ? v.toFixed(2) + '×' : dash);
  const ms = (v) => (isNum(v) ? (v < 10 ? v.toFixed(3) : v.toFixed(1)) + ' ms' : dash);

  function duration(s) {
    if (!isNum(s) || s < 0) return '';
    s = Math.round(s);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }

  function when(t) {
    if (typeof t !== 'string') return dash;
    const d = new Date(t);
    return isNaN(d) ? t : d.toLocaleString();
  }

  function bytes(n) {
    if (!isNum(n)) return '';
    const u = ['B', 'KB', 'MB', 'GB'];
    let i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + u[i];
  }

  /* ---------------------------------------------------------------- */
  /* The API, with the token.                                          */

  class AuthNeeded extends Error {}

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  function authHeaders(h) {
    const headers = new Headers(h || {});
    const t = token();
    if (t) headers.set('Authorization', 'Bearer ' + t);
    return headers;
  }

  async function api(path, opts) {
    opts = opts || {};
    const resp = await fetch(path, {
      method: opts.method || 'GET',
      headers: authHeaders(opts.headers),
      body: opts.body,
      signal: opts.signal,
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
    if (resp.status === 401) {
      const had = !!token();
      sessionStorage.removeItem(TOKEN_KEY);
      updateForget();
      askToken(had ? 'The token was refused.' : '');
      throw new AuthNeeded('token needed');
    }
    return resp;
  }

  /* The problem detail of an error response, as text. */
  async function problemText(resp) {
    let j = null;
    try { j = await resp.json(); } catch (e) { /* not JSON */ }
    if (j && typeof j === 'object') {
      const parts = [j.title, j.detail].filter((x) => typeof x === 'string' && x);
      if (parts.length) return parts.join(': ');
    }
    return 'HTTP ' + resp.status;
  }

  async function apiJSON(path, opts) {
    const resp = await api(path, opts);
    if (!resp.ok) throw new Error(await problemText(resp));
    return resp.json();
  }

  /* ---------------------------------------------------------------- */
  /* Token prompt.                                                     */

  let afterLogin = null;

  function askToken(message) {
    show($('login'), true);
    show($('list-view'), false);
    show($('job-view'), false);
    const err = $('login-error');
    err.textContent = message || '';
    show(err, !!message);
    $('token').focus();
  }

  function setupLogin() {
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const t = $('token').value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      $('token').value = '';
      try {
        await apiJSON('/v1/jobs?page_size=1');
      } catch (e) {
        if (!(e instanceof AuthNeeded)) askToken(e.message);
        return;
      }
      show($('login'), false);
      updateForget();
      if (afterLogin) afterLogin();
    });
    $('forget-token').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      location.assign('/ui/');
    });
    updateForget();
  }

  function updateForget() {
    show($('forget-token'), !!token());
  }

  /* ---------------------------------------------------------------- */
  /* The submit form: the spec's options with their defaults and help. */

  /* Mirrors api/spec.h. An empty field is left out of the spec, so the
   * server's default applies. */
  const SPEC_FIELDS = [
    { name: 'speedup', main: true, label: 'Target speedup', type: 'number', step: 'any', min: 1,
      placeholder: '4', help: 'How many times faster, > 1. Counts FLOPs of the convolutions (objective flops) or the whole model\'s measured time (objective time). Default 4, or none when ranks are given.' },
    { name: 'objective', main: true, label: 'Objective', type: 'select', options: ['time', 'flops'],
      help: 'time: the whole model\'s time measured in lowrank\'s engine at the deploy batch and threads. flops: the paper\'s FLOP ratio.' },
    { name: 'decomposition', main: true, label: 'Decomposition', type: 'select', options: ['spatial-channel', 'channel'],
      help: 'spatial-channel: a k×k layer may become k×1, 1×k and 1×1 (the TPAMI paper\'s most accurate scheme). channel: k×k with fewer filters, then 1×1.' },
    { name: 'method', main: true, label: 'Method', type: 'select',
      options: ['nonlinear-asymmetric', 'nonlinear', 'linear-asymmetric', 'linear'],
      help: 'nonlinear-asymmetric (the paper\'s best) fits each layer to the original responses from the already approximated layers below it.' },
    { name: 'holdout', label: 'Held-out fraction', type: 'number', step: 'any', min: 0, max: 0.99,
      placeholder: '0.1', help: 'Share of the calibration inputs kept aside to measure top-1 agreement and output error. Default 0.1.' },
    { name: 'samples_per_input', label: 'Samples per input', type: 'number', step: 1, min: 1,
      placeholder: '10', help: 'Response positions sampled per input and layer. Default 10.' },
    { name: 'seed', label: 'Seed', type: 'number', step: 1, min: 0, placeholder: '0',
      help: 'Seeds every random choice: same inputs and seed give the same model. Default 0.' },
    { name: 'rank_multiple', label: 'Rank multiple', type: 'number', step: 1, min: 1,
      placeholder: 'auto', help: 'Candidate ranks are multiples of this. Default: every rank for flops, the CPU\'s vector block for time.' },
    { name: 'deploy_batch', label: 'Deploy batch', type: 'number', step: 1, min: 1,
      placeholder: '1', help: 'Batch the time objective measures at. Default 1.' },
    { name: 'deploy_threads', label: 'Deploy threads', type: 'number', step: 1, min: 1,
      placeholder: '1', help: 'Threads the time objective measures with. Default 1.' },
    { name: 'fc_fit', label: 'FC fit', type: 'select', options: ['auto', 'shrinkage', 'weight-svd', 'data'],
      help: 'How fully connected layers are fitted. auto: the data fit when there are 10 calibration inputs per output feature, else the shrinkage fit.' },
    { name: 'memory_budget_mib', label: 'Memory budget (MiB)', type: 'number', step: 1, min: 64,
      placeholder: 'server default', help: 'Memory for sampled responses and cached activations. Default and largest allowed: the server\'s job_memory_mib.' },
    { name: 'notify_url', label: 'Webhook URL', type: 'url', wide: true, placeholder: 'none',
      help: 'http(s) URL that gets a signed POST (Standard Webhooks) when the job ends. Default: none.' },
    { name: 'exclude', label: 'Exclude layers', type: 'lines', wide: true,
      placeholder: 'one layer name per line', help: 'Layers never decomposed (node names, as lowrank inspect lists them).' },
    { name: 'ranks', label: 'Fixed ranks', type: 'json', wide: true,
      placeholder: '{"conv2": 16}', help: 'JSON object: layer name → rank. Only these layers are decomposed unless a speedup is also given.' },
  ];

  function buildSpecFields() {
    clear($('spec-main'));
    clear($('spec-more'));
    for (const f of SPEC_FIELDS) {
      const box = $(f.main ? 'spec-main' : 'spec-more');
      const id = 'spec-' + f.name;
      let input;
      if (f.type === 'select') {
        input = el('select', { id, name: f.name },
          el('option', { value: '', text: 'default (' + f.options[0] + ')' }),
          ...f.options.map((o) => el('option', { value: o, text: o })));
      } else if (f.type === 'url') {
        input = el('input', { id, name: f.name, type: 'url', placeholder: f.placeholder, spellcheck: 'false' });
      } else if (f.type === 'lines' || f.type === 'json') {
        input = el('textarea', { id, name: f.name, rows: 2, placeholder: f.placeholder, spellcheck: 'false' });
      } else {
        input = el('input', { id, name: f.name, type: 'number', step: f.step, min: f.min, max: f.max,
          placeholder: f.placeholder, inputmode: 'decimal' });
      }
      box.append(el('div', { class: 'field' + (f.wide ? ' wide' : '') },
        el('label', { for: id, text: f.label }), input, el('span', { class: 'hint', text: f.help })));
      input.addEventListener('input', updateSpecPreview);
      input.addEventListener('change', updateSpecPreview);
    }
    updateSpecPreview();
  }

  /* The spec from the form; throws Error naming the field at fault. */
  function specFromForm() {
    const spec = {};
    for (const f of SPEC_FIELDS) {
      const raw = $('spec-' + f.name).value.trim();
      if (raw === '') continue;
      if (f.type === 'select' || f.type === 'url') spec[f.name] = raw;
      else if (f.type === 'lines') {
        const names = raw.split('\n').map((s) => s.trim()).filter(Boolean);
        if (names.length) spec[f.name] = names;
      } else if (f.type === 'json') {
        let v;
        try { v = JSON.parse(raw); } catch (e) { throw new Error(f.label + ': not valid JSON'); }
        if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(f.label + ': must be a JSON object');
        spec[f.name] = v;
      } else {
        const v = Number(raw);
        if (!Number.isFinite(v)) throw new Error(f.label + ': not a number');
        spec[f.name] = v;
      }
    }
    return spec;
  }

  function updateSpecPreview() {
    let text;
    try { text = JSON.stringify(specFromForm(), null, 2); } catch (e) { text = e.message; }
    $('spec-preview').textContent = text;
  }

  function setupSubmit() {
    buildSpecFields();
    const form = $('submit-form');
    form.addEventListener('reset', () => setTimeout(updateSpecPreview, 0));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const err = $('submit-error');
      show(err, false);
      const model = $('f-model').files[0];
      const calib = $('f-calibration').files[0];
      let spec;
      try {
        if (!model) throw new Error('Model: choose an ONNX file');
        if (!calib) throw new Error('Calibration: choose a .npy file');
        spec = specFromForm();
      } catch (e) {
        err.textContent = e.message;
        show(err, true);
        return;
      }
      const fd = new FormData();
      fd.append('model', model, model.name);
      fd.append('calibration', calib, calib.name);
      fd.append('spec', JSON.stringify(spec));
      upload(fd);
    });
  }

  /* XHR rather than fetch: it reports upload progress. */
  function upload(fd) {
    const bar = $('upload-progress'), text = $('upload-text'), btn = $('submit-button');
    const err = $('submit-error');
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/v1/jobs');
    const t = token();
    if (t) xhr.setRequestHeader('Authorization', 'Bearer ' + t);
    xhr.responseType = 'json';
    btn.disabled = true;
    show(bar, true);
    bar.value = 0;
    text.textContent = 'Uploading…';
    xhr.upload.addEventListener('progress', (ev) => {
      if (!ev.lengthComputable) return;
      bar.value = ev.loaded / ev.total;
      text.textContent = 'Uploading ' + bytes(ev.loaded) + ' of ' + bytes(ev.total) +
        ' (' + Math.floor(100 * ev.loaded / ev.total) + '%)';
    });
    xhr.upload.addEventListener('load', () => { text.textContent = 'Checking the model and calibration…'; });
    const fail = (msg) => {
      btn.disabled = false;
      show(bar, false);
      text.textContent = '';
      err.textContent = msg;
      show(err, true);
    };
    xhr.addEventListener('error', () => fail('The upload failed: the connection was lost.'));
    xhr.addEventListener('load', () => {
      const j = xhr.response;
      if (xhr.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        btn.disabled = false;
        askToken('The token was refused.');
        return;
      }
      if (xhr.status !== 202 || !j || typeof j.id !== 'string') {
        const parts = j && typeof j === 'object' ? [j.title, j.detail].filter((x) => typeof x === 'string') : [];
        fail(parts.length ? parts.join(': ') : 'The server answered HTTP ' + xhr.status);
        return;
      }
      text.textContent = 'Accepted.';
      location.assign('/ui/jobs/' + encodeURIComponent(j.id));
    });
    xhr.send(fd);
  }

  /* ---------------------------------------------------------------- */
  /* The job list (live: refreshed every 2 s while the tab is visible). */

  let listPages = 1;
  let listTimer = null;

  function stateBadge(state) {
    const s = typeof state === 'string' ? state : 'unknown';
    return el('span', { class: 'state ' + s.replace(/[^a-z]/g, ''), text: s });
  }

  function progressCell(j) {
    const p = j.progress && typeof j.progress === 'object' ? j.progress : null;
    if (j.state === 'succeeded') return el('td', { text: 'done' });
    if (j.state !== 'running' || !p) return el('td', { text: j.state === 'queued' ? 'waiting' : dash });
    const bar = el('progress', { max: 1 });
    bar.value = isNum(p.fraction) ? p.fraction : 0;
    let label = typeof p.stage === 'string' ? p.stage : '';
    if (isNum(p.layer) && isNum(p.layers)) label += ' ' + p.layer + '/' + p.layers;
    return el('td', null, bar, ' ', label);
  }

  function jobRow(j) {
    const s = j.response && j.response.summary ? j.response.summary : {};
    const spec = j.spec && typeof j.spec === 'object' ? j.spec : {};
    const link = el('a', { href: '/ui/jobs/' + encodeURIComponent(String(j.id)), class: 'job-link' },
      el('code', { text: String(j.id).slice(0, 12) }));
    return el('tr', { 'data-id': String(j.id) },
      el('td', null, link),
      el('td', null, stateBadge(j.state)),
      el('td', { text: when(j.create_time) }),
      progressCell(j),
      el('td', { text: times(isNum(s.target_speedup) ? s.target_speedup : spec.speedup) }),
      el('td', { text: times(s.theoretical_speedup) }),
      el('td', { text: s.holdout ? pct(s.holdout.top1_agreement) : dash }));
  }

  async function refreshList() {
    clearTimeout(listTimer);
    const state = $('state-filter').value;
    const rows = [];
    let tokenNext = '', more = false;
    try {
      for (let i = 0; i < listPages; i++) {
        const q = new URLSearchParams({ page_size: '25' });
        if (state) q.set('state', state);
        if (tokenNext) q.set('page_token', tokenNext);
        const page = await apiJSON('/v1/jobs?' + q.toString());
        for (const j of Array.isArray(page.jobs) ? page.jobs : []) rows.push(jobRow(j));
        tokenNext = typeof page.next_page_token === 'string' ? page.next_page_token : '';
        more = !!tokenNext;
        if (!more) break;
      }
    } catch (e) {
      if (e instanceof AuthNeeded) return;
      notice('Cannot list jobs: ' + e.message);
      listTimer = setTimeout(refreshList, 5000);
      return;
    }
    notice('');
    const body = clear($('jobs').tBodies[0]);
    body.append(...rows);
    show($('jobs-empty'), rows.length === 0);
    show($('jobs-more'), more);
    $('list-updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    listTimer = setTimeout(refreshList, document.hidden ? 10000 : 2000);
  }

  function showList() {
    document.title = 'Jobs – lowrankd';
    show($('list-view'), true);
    const params = new URLSearchParams(location.search);
    const st = params.get('state') || '';
    if ([...$('state-filter').options].some((o) => o.value === st)) $('state-filter').value = st;
    refreshList();
  }

  function setupList() {
    setupSubmit();
    $('state-filter').addEventListener('change', () => {
      const st = $('state-filter').value;
      history.replaceState(null, '', st ? '/ui/?state=' + encodeURIComponent(st) : '/ui/');
      listPages = 1;
      refreshList();
    });
    $('jobs-more').addEventListener('click', () => { listPages++; refreshList(); });
    document.addEventListener('visibilitychange', () => { if (!document.hidden && !$('list-view').hidden) refreshList(); });
  }

  /* ---------------------------------------------------------------- */
  /* One job.                                                          */

  let job = null;          /* the latest job resource */
  let jobId = '';
  let reportShown = false;
  let streamAbort = null;

  function renderJob(j) {
    job = j;
    document.title = 'Job ' + String(j.id).slice(0, 12) + ' (' + j.state + ') – lowrankd';
    $('job-id').textContent = String(j.id);
    const badge = $('job-state');
    badge.textContent = String(j.state);
    badge.className = 'state ' + String(j.state).replace(/[^a-z]/g, '');

    const meta = clear($('job-meta'));
    const add = (k, v) => { if (v !== undefined && v !== null && v !== '') meta.append(el('dt', { text: k }), el('dd', { text: v })); };
    add('Created', when(j.create_time));
    add('Started', j.start_time ? when(j.start_time) : '');
    add('Ended', j.end_time ? when(j.end_time) : '');
    if (j.start_time) {
      const t0 = Date.parse(j.start_time), t1 = j.end_time ? Date.parse(j.end_time) : Date.now();
      add(j.end_time ? 'Took' : 'Running for', duration((t1 - t0) / 1000));
    }
    add('Attempts', isNum(j.attempts) ? String(j.attempts) : '');
    if (j.inputs) {
      add('Model SHA-256', j.inputs.model_sha256);
      add('Calibration SHA-256', j.inputs.calibration_sha256);
    }
    if (j.response) add('Result SHA-256', j.response.model_sha256);
    if (j.notify && typeof j.notify === 'object') {
      /* Only GET /v1/jobs/{id} carries it (not the event stream). */
      const n = j.notify;
      let s = String(n.state) + ' after ' + n.attempts + (n.attempts === 1 ? ' attempt' : ' attempts');
      if (isNum(n.last_status)) s += ', last answer HTTP ' + n.last_status;
      if (typeof n.last_error === 'string') s += ', last error: ' + n.last_error;
      if (n.next_attempt_time) s += ', next attempt ' + when(n.next_attempt_time);
      add('Webhook', s);
    }
    $('job-spec').textContent = JSON.stringify(j.spec === undefined ? {} : j.spec, null, 2);

    /* Progress. */
    const p = j.progress && typeof j.progress === 'object' ? j.progress : null;
    const running = j.state === 'running' || j.state === 'queued';
    show($('job-progress'), running);
    if (running) {
      $('prog-stage').textContent = j.state === 'queued' ? 'queued' : (p && typeof p.stage === 'string' ? p.stage : 'starting');
      let layer = '';
      if (p && isNum(p.layer) && isNum(p.layers)) {
        layer = 'layer ' + p.layer + ' of ' + p.layers;
        if (typeof p.layer_name === 'string') layer += ': ' + p.layer_name;
      }
      $('prog-layer').textContent = layer;
      const f = p && isNum(p.fraction) ? p.fraction : 0;
      $('prog-bar').value = f;
      $('prog-pct').textContent = Math.floor(f * 100) + '%';
      $('prog-eta').textContent = p && isNum(p.eta_seconds) ? 'about ' + duration(p.eta_seconds) + ' left' : '';
      if (j.cancel_requested) $('prog-eta').textContent = 'cancel requested';
    }

    /* Errors. */
    const failed = j.state === 'failed' || j.state === 'canceled';
    show($('job-error'), failed && !!j.error);
    if (failed && j.error) {
      $('job-error-title').textContent = typeof j.error.title === 'string' ? j.error.title : String(j.state);
      $('job-error-detail').textContent = typeof j.error.detail === 'string' ? j.error.detail : '';
    }

    /* Actions. */
    const ok = j.state === 'succeeded' && j.response;
    show($('btn-model'), !!ok);
    show($('btn-report'), !!(ok && j.response.report));
    show($('btn-cancel'), !j.done);
    $('btn-cancel').disabled = !!j.cancel_requested;
    show($('btn-delete'), !!j.done);

    if (ok && j.response.report && !reportShown) {
      reportShown = true;
      loadReport();
    }
  }

  /* Reads the job's Server-Sent Events with fetch() (so the token goes in
   * a header) and renders each job it carries. Resolves when the stream
   * ends; rejects on errors. */
  async function readEvents(id, signal) {
    const resp = await api('/v1/jobs/' + encodeURIComponent(id) + '/events', {
      headers: { Accept: 'text/event-stream' }, signal,
    });
    if (!resp.ok) throw new Error(await problemText(resp));
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    $('prog-live').textContent = '· live';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value.replace(/\r\n?/g, '\n');
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('data:')) data.push(line.slice(line[5] === ' ' ? 6 : 5));
        }
        if (!data.length) continue; /* a comment (keep-alive) */
        let j;
        try { j = JSON.parse(data.join('\n')); } catch (e) { continue; }
        if (j && typeof j === 'object') renderJob(j);
      }
    }
    $('prog-live').textContent = '';
  }

  async function followJob(id) {
    let delay = 1000;
    while (!job || !job.done) {
      streamAbort = new AbortController();
      try {
        await readEvents(id, streamAbort.signal);
        delay = 1000;
      } catch (e) {
        if (e instanceof AuthNeeded || (e && e.name === 'AbortError')) return;
        $('prog-live').textContent = '· reconnecting';
      }
      if (job && job.done) break;
      /* The stream ended early (server restart, proxy): poll once, then
       * reconnect. */
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
      try {
        renderJob(await apiJSON('/v1/jobs/' + encodeURIComponent(id)));
      } catch (e) {
        if (e instanceof AuthNeeded) return;
        notice('Cannot read the job: ' + e.message);
        if (/not found/i.test(e.message)) return;
      }
    }
  }

  async function showJob(id) {
    jobId = id;
    show($('job-view'), true);
    try {
      renderJob(await apiJSON('/v1/jobs/' + encodeURIComponent(id)));
    } catch (e) {
      if (!(e instanceof AuthNeeded)) notice('Cannot read the job: ' + e.message);
      return;
    }
    if (!job.done) followJob(id);
  }

  /* Downloads: fetch with the token, then save the blob. */
  async function download(path, fallbackName, btn) {
    btn.disabled = true;
    const label = btn.textContent;
    btn.textContent = 'Downloading…';
    try {
      const resp = await api(path);
      if (!resp.ok) throw new Error(await problemText(resp));
      const cd = resp.headers.get('Content-Disposition') || '';
      const m = /filename="([^"\\/]+)"/.exec(cd);
      const blob = await resp.blob();
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: m ? m[1] : fallbackName });
      a.hidden = true;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) {
      if (!(e instanceof AuthNeeded)) notice('Download failed: ' + e.message);
    } finally {
      btn.disabled = false;
      btn.textContent = label;
    }
  }

  function setupJob() {
    $('btn-model').addEventListener('click', (ev) =>
      download(job.response.model, jobId + '.lowrank.onnx', ev.currentTarget));
    $('btn-report').addEventListener('click', (ev) =>
      download(job.response.report, jobId + '.lowrank.report.json', ev.currentTarget));
    $('btn-cancel').addEventListener('click', async () => {
      try {
        const resp = await api('/v1/jobs/' + encodeURIComponent(jobId) + ':cancel', {
          method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}',
        });
        if (!resp.ok) throw new Error(await problemText(resp));
        renderJob(await resp.json());
      } catch (e) {
        if (!(e instanceof AuthNeeded)) notice('Cancel failed: ' + e.message);
      }
    });
    /* Delete asks twice, without a modal dialog. */
    const del = $('btn-delete');
    let armed = null;
    del.addEventListener('click', async () => {
      if (!armed) {
        del.textContent = 'Click again to delete';
        del.classList.add('armed');
        armed = setTimeout(() => { armed = null; del.textContent = 'Delete'; del.classList.remove('armed'); }, 4000);
        return;
      }
      clearTimeout(armed);
      armed = null;
      try {
        const resp = await api('/v1/jobs/' + encodeURIComponent(jobId), { method: 'DELETE' });
        if (!resp.ok && resp.status !== 204) throw new Error(await problemText(resp));
        location.assign('/ui/');
      } catch (e) {
        if (!(e instanceof AuthNeeded)) notice('Delete failed: ' + e.message);
      }
    });
  }

  /* ---------------------------------------------------------------- */
  /* Results: tiles, charts, the layer table.                          */

  const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
    '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939', '#8c6d31', '#843c39', '#7b4173'];
  const color = (i) => PALETTE[i % PALETTE.length];
  const charts = {};

  async function loadReport() {
    let rep;
    try {
      rep = await apiJSON(job.response.report);
    } catch (e) {
      if (!(e instanceof AuthNeeded)) notice('Cannot read the report: ' + e.message);
      return;
    }
    if (!rep || typeof rep !== 'object') return;
    const layers = Array.isArray(rep.layers) ? rep.layers.filter((l) => l && typeof l === 'object') : [];
    show($('results'), true);
    renderTiles(rep);
    renderLayers(layers);
    if (typeof Chart !== 'function') {
      notice('Chart.js did not load: the charts are missing.');
      return;
    }
    Chart.defaults.animation = false;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    drawEnergy(layers);
    drawBudget(layers, rep);
    drawSpeedup(rep);
    drawFidelity(rep);
    drawErrors(layers);
    document.body.dataset.charts = 'ready';
  }

  function tile(k, v, title, small) {
    return el('div', { class: 'tile', title }, el('div', { class: small ? 'v small' : 'v', text: v }), el('div', { class: 'k', text: k }));
  }

  function renderTiles(rep) {
    const t = clear($('tiles'));
    const dep = rep.deploy && typeof rep.deploy === 'object' ? rep.deploy : {};
    const hold = rep.holdout && typeof rep.holdout === 'object' ? rep.holdout : {};
    t.append(tile('requested speedup', times(rep.target_speedup), 'target_speedup'));
    t.append(tile('FLOP speedup (convolutions)', times(rep.theoretical_speedup), 'theoretical_speedup'));
    if (isNum(dep.measured_speedup)) {
      t.append(tile('measured speedup (batch ' + fmt(dep.batch, 0) + ', ' + fmt(dep.threads, 0) + ' thread' + (dep.threads === 1 ? '' : 's') + ')',
        times(dep.measured_speedup), 'deploy.measured_speedup, in lowrank\'s engine'));
    }
    if (isNum(rep.conv_mflops_before)) {
      t.append(tile('conv MFLOPs before → after', fmt(rep.conv_mflops_before, 1) + ' → ' + fmt(rep.conv_mflops_after, 1)));
    }
    if (isNum(hold.top1_agreement)) t.append(tile('held-out top-1 agreement (' + fmt(hold.inputs, 0) + ' inputs)', pct(hold.top1_agreement)));
    if (isNum(hold.relative_output_error)) t.append(tile('held-out relative output error', pct(hold.relative_output_error, 2)));
    if (typeof rep.method === 'string') t.append(tile('method · objective', rep.method + ' · ' + (typeof rep.objective === 'string' ? rep.objective : dash), undefined, true));
    if (isNum(rep.seconds)) t.append(tile('compression time', rep.seconds < 60 ? rep.seconds.toFixed(rep.seconds < 10 ? 2 : 1) + ' s' : duration(rep.seconds)));
  }

  /* The columns the table knows; anything else a layer carries is shown
   * in Notes as key: value, so new report fields appear without a code
   * change. */
  const KNOWN = new Set(['kernel', 'name', 'output', 'k', 'c', 'd', 'rank', 'solution', 'scheme', 'energy',
    'error_before', 'error_after', 'time_ms_before', 'time_ms_after', 'speedup', 'mflops_before',
    'mflops_after', 'skipped', 'note', 'energy_curve', 'candidates', 'seconds', 'in_model_factor',
    'from_cached_cut', 'rank2', 'kind']);

  function layerName(l, i) {
    return typeof l.name === 'string' && l.name ? l.name : typeof l.output === 'string' ? l.output : 'layer ' + i;
  }

  function renderLayers(layers) {
    const body = clear($('layers').tBodies[0]);
    layers.forEach((l, i) => {
      const notes = [];
      if (typeof l.skipped === 'string') notes.push(l.skipped);
      if (typeof l.note === 'string') notes.push(l.note);
      for (const [k, v] of Object.entries(l)) {
        if (KNOWN.has(k) || v === null || typeof v === 'object') continue;
        notes.push(k.replace(/_/g, ' ') + ': ' + (isNum(v) ? fmt(v) : String(v)));
      }
      /* Scheme: the decomposition (with "fc" for a fully connected layer)
       * and the solution, e.g. "spatial-channel · nonlinear". */
      const parts = [l.kind === 'fc' ? 'fc' : l.scheme, l.solution].filter((s) => typeof s === 'string' && s);
      const scheme = parts.length ? parts.join(' · ') : isNum(l.rank) ? dash : 'not decomposed';
      /* Rank: d', or d'' → d' for a spatial split. */
      const rank = isNum(l.rank2) && isNum(l.rank) ? fmt(l.rank2, 0) + ' → ' + fmt(l.rank, 0) : fmt(l.rank, 0);
      const k = Array.isArray(l.kernel) ? l.kernel.join('×') : isNum(l.k) ? l.k + '×' + l.k : typeof l.k === 'string' ? l.k : dash;
      const mf = isNum(l.mflops_before) ? fmt(l.mflops_before, 2) + ' → ' + fmt(l.mflops_after, 2) : dash;
      const tr = el('tr', { class: isNum(l.rank) ? 'decomposed' : 'skipped' },
        el('td', { class: 'n', text: String(i + 1) }),
        el('td', { class: 'name', text: layerName(l, i) }),
        el('td', { class: 'n', text: k }),
        el('td', { class: 'n', text: fmt(l.c, 0) }),
        el('td', { class: 'n', text: fmt(l.d, 0) }),
        el('td', { class: 'n', text: rank }),
        el('td', { text: scheme }),
        el('td', { class: 'n', text: pct(l.energy, 2) }),
        el('td', { class: 'n', text: fmt(l.error_before, 4) }),
        el('td', { class: 'n', text: fmt(l.error_after, 4) }),
        el('td', { class: 'n', text: ms(l.time_ms_before) }),
        el('td', { class: 'n', text: ms(l.time_ms_after) }),
        el('td', { class: 'n', text: times(l.speedup) }),
        el('td', { class: 'n', text: mf }),
        el('td', { class: 'notes', text: notes.join(' · ') }));
      body.append(tr);
    });
  }

  function makeChart(id, config) {
    if (charts[id]) charts[id].destroy();
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    charts[id] = new Chart($(id), config);
    return charts[id];
  }

  /* Fig. 2 of the paper: each layer's cumulative energy against rank, one
   * series per layer with a curve, the chosen rank as a large dot. */
  function drawEnergy(layers) {
    const datasets = [];
    layers.forEach((l, i) => {
      const c = l.energy_curve;
      if (!c || !Array.isArray(c.rank) || !Array.isArray(c.energy)) return;
      const data = c.rank.map((r, k) => ({ x: r, y: c.energy[k] })).filter((p) => isNum(p.x) && isNum(p.y));
      const chosen = isNum(l.rank) ? data.findIndex((p) => p.x === l.rank) : -1;
      const col = color(datasets.length);
      datasets.push({
        label: layerName(l, i),
        data,
        borderColor: col,
        backgroundColor: col,
        borderWidth: 1.6,
        pointRadius: data.map((_, k) => (k === chosen ? 5 : 0)),
        pointHoverRadius: data.map((_, k) => (k === chosen ? 7 : 3)),
        pointHitRadius: 4,
        chosenRank: isNum(l.rank) ? l.rank : null,
      });
    });
    if (!datasets.length) {
      $('chart-energy').closest('figure').append(el('p', { class: 'hint', text: 'This report has no energy curves (it predates them, or no layer was decomposable).' }));
      return;
    }
    const xmax = Math.max(...datasets.map((ds) => (ds.data.length ? ds.data[ds.data.length - 1].x : 1)));
    makeChart('chart-energy', {
      type: 'line',
      data: { datasets },
      options: {
        parsing: false,
        interaction: { mode: 'nearest', intersect: false },
        scales: {
          x: { type: 'linear', min: 0, max: xmax, title: { display: true, text: 'rank d′ (components kept)' } },
          y: { min: 0, max: 1, title: { display: true, text: 'cumulative PCA energy' },
            ticks: { callback: (v) => Math.round(v * 100) + '%' } },
        },
        plugins: {
          legend: { position: 'right', labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: (ctx) => ctx.dataset.label + ': rank ' + ctx.parsed.x + ' keeps ' + pct(ctx.parsed.y, 2) +
                (ctx.parsed.x === ctx.dataset.chosenRank ? ' (chosen)' : ''),
            },
          },
        },
      },
    });
  }

  /* Cost per layer before and after (MFLOPs, and measured ms with the
   * time objective), and the share of the filters kept (d′/d). */
  function drawBudget(layers, rep) {
    const labels = layers.map(layerName);
    const haveFlops = layers.some((l) => isNum(l.mflops_before));
    const haveTime = layers.some((l) => isNum(l.time_ms_before));
    const datasets = [];
    if (haveFlops) {
      datasets.push({ type: 'bar', label: 'MFLOPs before', data: layers.map((l) => (isNum(l.mflops_before) ? l.mflops_before : null)), backgroundColor: '#b8c7d9', yAxisID: 'y' });
      datasets.push({ type: 'bar', label: 'MFLOPs after', data: layers.map((l) => (isNum(l.mflops_after) ? l.mflops_after : null)), backgroundColor: '#1f6fb2', yAxisID: 'y' });
    } else {
      datasets.push({ type: 'bar', label: 'filters d', data: layers.map((l) => (isNum(l.d) ? l.d : null)), backgroundColor: '#b8c7d9', yAxisID: 'y' });
      datasets.push({ type: 'bar', label: 'rank d′', data: layers.map((l) => (isNum(l.rank) ? l.rank : isNum(l.d) ? l.d : null)), backgroundColor: '#1f6fb2', yAxisID: 'y' });
    }
    if (haveTime) {
      datasets.push({ type: 'bar', label: 'ms before (measured)', data: layers.map((l) => (isNum(l.time_ms_before) ? l.time_ms_before : null)), backgroundColor: '#f2c48d', yAxisID: 'yt' });
      datasets.push({ type: 'bar', label: 'ms after (measured)', data: layers.map((l) => (isNum(l.time_ms_after) ? l.time_ms_after : null)), backgroundColor: '#e07b00', yAxisID: 'yt' });
    }
    datasets.push({ type: 'line', label: 'rank kept d′/d', data: layers.map((l) => (isNum(l.d) && l.d > 0 ? (isNum(l.rank) ? l.rank : l.d) / l.d : null)),
      borderColor: '#2ca02c', backgroundColor: '#2ca02c', yAxisID: 'yr', pointRadius: 3, borderWidth: 1.5 });
    const scales = {
      x: { ticks: { autoSkip: false, maxRotation: 60, callback: (v, i) => shortName(labels[i]) } },
      y: { beginAtZero: true, position: 'left', title: { display: true, text: haveFlops ? 'MFLOPs per input' : 'channels' } },
      yr: { min: 0, max: 1, position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: 'rank kept' },
        ticks: { callback: (v) => Math.round(v * 100) + '%' } },
    };
    if (haveTime) scales.yt = { beginAtZero: true, position: 'right', grid: { drawOnChartArea: false }, title: { display: true, text: 'ms' } };
    const sel = rep.selection && typeof rep.selection === 'object' ? rep.selection : null;
    makeChart('chart-budget', {
      type: 'bar',
      data: { labels, datasets },
      options: {
        scales,
        plugins: {
          subtitle: {
            display: !!(sel && isNum(sel.cost_budget) && isNum(sel.cost_before) && sel.cost_before > 0),
            text: sel && isNum(sel.cost_before) && sel.cost_before > 0
              ? 'budget: ' + pct(sel.cost_budget / sel.cost_before) + ' of the decomposable layers\' cost; chosen ranks use ' +
                pct(sel.cost_after / sel.cost_before) + (typeof sel.algorithm === 'string' ? ' (' + sel.algorithm + ')' : '')
              : '',
          },
          tooltip: { callbacks: { title: (items) => (items.length ? labels[items[0].dataIndex] : '') } },
        },
      },
    });
  }

  function shortName(s) {
    s = String(s === undefined ? '' : s);
    return s.length > 24 ? '…' + s.slice(-23) : s;
  }

  /* Requested vs FLOP vs predicted vs measured speedup. */
  function drawSpeedup(rep) {
    const dep = rep.deploy && typeof rep.deploy === 'object' ? rep.deploy : {};
    const bars = [];
    if (isNum(rep.target_speedup) && rep.target_speedup > 0) bars.push(['requested', rep.target_speedup, '#7f7f7f']);
    const flop = isNum(rep.theoretical_speedup) ? rep.theoretical_speedup : dep.flop_ratio;
    if (isNum(flop)) bars.push(['FLOPs', flop, '#1f6fb2']);
    if (isNum(dep.predicted_speedup)) bars.push(['predicted (time model)', dep.predicted_speedup, '#9467bd']);
    if (isNum(dep.measured_speedup)) bars.push(['measured, batch ' + fmt(dep.batch, 0) + ' × ' + fmt(dep.threads, 0) + ' thr', dep.measured_speedup, '#e07b00']);
    for (const m of Array.isArray(rep.measured) ? rep.measured : []) {
      if (m && isNum(m.speedup)) bars.push(['measured, batch ' + fmt(m.batch, 0), m.speedup, '#f2a65a']);
    }
    makeChart('chart-speedup', {
      type: 'bar',
      data: { labels: bars.map((b) => b[0]), datasets: [{ label: 'speedup', data: bars.map((b) => b[1]), backgroundColor: bars.map((b) => b[2]) }] },
      options: {
        indexAxis: 'y',
        scales: { x: { beginAtZero: true, title: { display: true, text: 'times faster (1 = as before)' } } },
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: (ctx) => times(ctx.parsed.x) } } },
      },
    });
    $('speedup-note').textContent = 'Measured in lowrank\'s engine on the server\'s CPU; FLOPs count the convolutions only.';
  }

  function drawFidelity(rep) {
    const h = rep.holdout && typeof rep.holdout === 'object' ? rep.holdout : null;
    if (!h) {
      $('fidelity-note').textContent = 'No held-out inputs (holdout = 0, or too few calibration inputs).';
      return;
    }
    makeChart('chart-fidelity', {
      type: 'bar',
      data: {
        labels: ['top-1 agreement', 'relative output error'],
        datasets: [{ label: 'held-out', data: [h.top1_agreement, h.relative_output_error].map((v) => (isNum(v) ? v * 100 : null)), backgroundColor: ['#2ca02c', '#d62728'] }],
      },
      options: {
        indexAxis: 'y',
        scales: { x: { min: 0, max: 100, title: { display: true, text: '%' } } },
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: (ctx) => ctx.parsed.x.toFixed(2) + '%' } } },
      },
    });
    $('fidelity-note').textContent = 'On ' + fmt(h.inputs, 0) + ' held-out calibration input(s): how often the top-1 class is unchanged, and the relative L2 error of the outputs.';
  }

  function drawErrors(layers) {
    const rows = layers.filter((l) => isNum(l.error_before) || isNum(l.error_after));
    if (!rows.length) return;
    const labels = rows.map((l) => layerName(l, layers.indexOf(l)));
    makeChart('chart-error', {
      type: 'bar',
      data: {
        labels,
        datasets: [
          { label: 'before (linear init)', data: rows.map((l) => (isNum(l.error_before) ? l.error_before : null)), backgroundColor: '#f2a65a' },
          { label: 'after (solved)', data: rows.map((l) => (isNum(l.error_after) ? l.error_after : null)), backgroundColor: '#1f6fb2' },
        ],
      },
      options: {
        scales: {
          x: { ticks: { autoSkip: false, maxRotation: 60, callback: (v, i) => shortName(labels[i]) } },
          y: { beginAtZero: true, title: { display: true, text: 'relative response error' } },
        },
        plugins: { tooltip: { callbacks: { title: (items) => (items.length ? labels[items[0].dataIndex] : '') } } },
      },
    });
  }

  /* ---------------------------------------------------------------- */
  /* Start.                                                            */

  function route() {
    const path = location.pathname;
    const m = /^\/ui\/jobs\/([0-9a-f]{32})$/.exec(path);
    if (m) showJob(m[1]);
    else showList();
  }

  function start() {
    setupLogin();
    setupList();
    setupJob();
    afterLogin = route;
    route();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
