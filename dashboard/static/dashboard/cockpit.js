// The ops cockpit: live figures, active bookings, sign-ups and KYC from the /admin namespace;
// the map and the chart from two staff REST endpoints. Plain browser JavaScript, no build step.
(function () {
  'use strict';
  const root = document.getElementById('cockpit');
  const cfg = root.dataset;
  const OPEN = ['PENDING', 'PARTNER_ASSIGNED', 'PARTNER_ACCEPTED', 'PARTNER_EN_ROUTE', 'PARTNER_ARRIVED', 'IN_PROGRESS'];
  const COLOURS = {
    PENDING: '#b36b00', PARTNER_ASSIGNED: '#8e44ad', PARTNER_ACCEPTED: '#2980b9', PARTNER_EN_ROUTE: '#16a085',
    PARTNER_ARRIVED: '#27ae60', IN_PROGRESS: '#2c3e50', COMPLETED: '#7f8c8d', CANCELLED: '#c0392b',
  };
  const bookings = new Map();
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, text) => {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const svg = (tag, attrs) => {
    const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, v));
    return node;
  };
  const link = (template, id) => template.replace(/0{8}-0{4}-0{4}-0{4}-0{12}|\/0\//, (m) => (m.startsWith('/') ? `/${id}/` : id));

  // ------------------------------------------------------------ connection
  const socket = io('/admin', { auth: { token: cfg.token } });
  const setConn = (state) => { const c = $('conn'); c.textContent = state; c.className = 'conn-' + state; };
  socket.on('connect', async () => {
    setConn('connected');
    loadAlerts();
    const stats = await socket.emitWithAck('request:stats');
    if (stats.ok) renderStats(stats.stats);
    const monitor = await socket.emitWithAck('monitor:bookings');
    if (monitor.ok) { bookings.clear(); monitor.bookings.forEach(upsert); renderBookings(); }
  });
  socket.on('disconnect', () => setConn('reconnecting'));
  socket.io.on('reconnect_attempt', () => setConn('reconnecting'));
  socket.on('connect_error', () => setConn('reconnecting'));
  // The page's token expires like any other: fetch a fresh one (session cookie) and refresh.
  setInterval(async () => {
    const response = await fetch(cfg.tokenUrl, { credentials: 'same-origin' });
    if (!response.ok) return;
    const { token } = await response.json();
    socket.auth.token = token;
    if (socket.connected) socket.emit('auth:refresh', { token });
  }, Math.max(30, Number(cfg.tokenSeconds) / 2) * 1000);

  // ------------------------------------------------------------ safety alerts, above everything else
  const alerts = new Map();
  const acknowledged = new Set(); // an escalation that crossed the acknowledgement in flight stays gone
  function renderAlerts() {
    const section = $('alerts');
    section.querySelector('ul').replaceChildren(...[...alerts.values()]
      .sort((a, b) => Date.parse(a.at) - Date.parse(b.at)) // by time: ':05Z' spells later than ':05.2Z'
      .map((a) => {
        const item = el('li', { 'data-alert': a.alertId });
        item.append(el('strong', {}, `SOS from ${a.raisedBy.name} (${a.raisedBy.role})`), ` ${age(a.at)} ago`);
        if (a.escalation) item.append(` · sent ${a.escalation + 1} times`);
        if (a.bookingId) item.append(' · ', el('a', { href: link(cfg.bookingUrl, a.bookingId) }, 'booking'));
        if (a.location) item.append(` · at ${a.location.latitude.toFixed(5)}, ${a.location.longitude.toFixed(5)}`);
        const button = el('button', { type: 'button', 'data-action': 'acknowledge' }, 'Acknowledge');
        button.addEventListener('click', () => acknowledge(a.alertId));
        item.append(' ', button);
        if (a.note) item.append(el('div', { class: 'note' }, a.note));
        return item;
      }));
    section.hidden = alerts.size === 0;
  }
  let arriving = null; // the alerts heard live while the open list is on its way: newer than it
  function showAlert(a) {
    if (acknowledged.has(a.alertId)) return;
    alerts.set(a.alertId, a);
    if (arriving) arriving.add(a.alertId);
    renderAlerts();
  }
  function dropAlert(alertId) { acknowledged.add(alertId); alerts.delete(alertId); renderAlerts(); }
  async function loadAlerts() { // the open ones at each connect; live events keep the list after that
    const heard = arriving = new Set();
    try {
      const response = await fetch(cfg.alertsUrl, { credentials: 'same-origin' });
      if (!response.ok) return;
      const open = await response.json();
      [...alerts.keys()].forEach((id) => { if (!heard.has(id)) alerts.delete(id); });
      open.forEach((a) => { if (!acknowledged.has(a.alertId) && !heard.has(a.alertId)) alerts.set(a.alertId, a); });
      renderAlerts();
    } finally {
      if (arriving === heard) arriving = null;
    }
  }
  async function acknowledge(alertId) {
    const answer = await socket.emitWithAck('safety:acknowledge', { alertId });
    if (answer.ok || answer.error.code === 'CONFLICT') dropAlert(alertId); // CONFLICT: a colleague took it
    else feed(`Acknowledge refused: ${answer.error.message}`, '#');
  }
  socket.on('safety:alert', showAlert);
  socket.on('safety:acknowledged', (k) => dropAlert(k.alertId));

  // ------------------------------------------------------------ counters
  function renderStats(s) {
    $('c-bookings-today').textContent = s.bookings.today;
    $('c-bookings-total').textContent = s.bookings.total;
    $('c-bookings-active').textContent = s.bookings.active;
    $('c-revenue-today').textContent = `${s.revenue.today} ${s.revenue.currency}`;
    $('c-partners-online').textContent = s.partners.online;
    $('c-partners-available').textContent = s.partners.available;
    $('c-partners-kyc').textContent = s.partners.pendingKyc;
    $('c-customers-online').textContent = s.customers.online;
    $('updated').textContent = '(figures of ' + new Date(s.generatedAt).toLocaleTimeString() + ')';
  }
  socket.on('dashboard:stats_update', renderStats);

  // ------------------------------------------------------------ active bookings
  function upsert(b) { if (OPEN.includes(b.status)) bookings.set(b.id, b); else bookings.delete(b.id); }
  function age(iso) {
    const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    return s < 90 ? `${s} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
  }
  // What resolves each kind of attention (contract 9.3): the same REST endpoints as any client.
  const ACTIONS = {
    unassigned: [['Cancel', (b) => act(`/api/bookings/${b.id}/cancel/`, { reason: 'No partner available' })]],
    partner_suspended: [
      ['Complete', (b) => act(`/api/bookings/${b.id}/complete/`, {})],
      ['Cancel', (b) => act(`/api/bookings/${b.id}/cancel/`, { reason: 'Partner suspended' })],
    ],
    stale: [
      ['Complete', (b) => act(`/api/bookings/${b.id}/complete/`, {})],
      ['Cancel', (b) => act(`/api/bookings/${b.id}/cancel/`, { reason: 'Partner unreachable' })],
    ],
    // The partner set PARTNER_ARRIVED more than 1 km from the place (contract 10.3): call them first;
    // the flag clears by itself when they come near, or when the job ends.
    arrived_far: [
      ['Complete', (b) => act(`/api/bookings/${b.id}/complete/`, {})],
      ['Cancel', (b) => act(`/api/bookings/${b.id}/cancel/`, { reason: 'Partner not at the address' })],
    ],
  };
  async function act(path, body) {
    const response = await fetch(path, {
      method: 'POST', credentials: 'same-origin', body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${socket.auth.token}` },
    });
    if (response.ok) upsert(await response.json());
    else feed(`Action refused: ${(await response.json()).message}`, '#');
    renderBookings();
  }
  function renderBookings() {
    const body = $('bookings').querySelector('tbody');
    body.replaceChildren(...[...bookings.values()]
      // What needs staff first, oldest first; then the rest, newest first.
      .sort((a, b) => (!!b.attention - !!a.attention)
        || (a.attention ? Date.parse(a.createdAt) - Date.parse(b.createdAt) : Date.parse(b.createdAt) - Date.parse(a.createdAt)))
      .map((b) => {
        // Dispatch: its state and the offers made so far; flagged rows want staff.
        const state = b.dispatch ? b.dispatch.state : '';
        const row = el('tr', { 'data-booking': b.id, class: b.attention ? `attention ${b.attention}` : '' });
        const number = el('td'); number.append(el('a', { href: link(cfg.bookingUrl, b.id) }, b.bookingNumber));
        const offers = b.dispatch ? b.dispatch.attempts : 0;
        const dispatch = b.dispatch ? `${state} · ${offers} offer${offers === 1 ? '' : 's'}` : '-';
        const needs = el('td', { class: 'needs' }, b.attention ? b.attention.replace('_', ' ') : '');
        for (const [label, run] of ACTIONS[b.attention] || []) {
          const button = el('button', { type: 'button', 'data-action': label.toLowerCase() }, label);
          button.addEventListener('click', () => run(b));
          needs.append(' ', button);
        }
        row.append(number, el('td', {}, b.status), el('td', {}, b.service.name), el('td', {}, b.customer.name),
          el('td', {}, b.partner ? b.partner.name : '-'), el('td', { 'data-created': b.createdAt }, age(b.createdAt)),
          el('td', {}, dispatch), needs);
        return row;
      }));
  }
  let redraw = null;  // map and chart follow booking changes, at most once a second
  const soon = () => { if (!redraw) redraw = setTimeout(() => { redraw = null; drawMap(); drawChart(); }, 1000); };
  socket.on('booking:created', (b) => { upsert(b); renderBookings(); soon(); });
  socket.on('booking:updated', (b) => { upsert(b); renderBookings(); soon(); });
  setInterval(() => document.querySelectorAll('#bookings [data-created]').forEach((td) => { td.textContent = age(td.dataset.created); }), 5000);

  // ------------------------------------------------------------ sign-ups and KYC
  function feed(text, href) {
    const item = el('li'); item.append(el('a', { href }, text), ` (${new Date().toLocaleTimeString()})`);
    $('feed').prepend(item);
  }
  socket.on('partner:registered', (p) => feed(`New partner: ${p.name}`, link(cfg.partnerUrl, p.partnerId)));
  socket.on('kyc:submitted', (k) => feed(`KYC ${k.documentType} from ${k.partnerName}`, link(cfg.kycUrl, k.submissionId)));

  // ------------------------------------------------------------ map (drawn here: no tile server)
  async function drawMap() {
    const response = await fetch(cfg.mapUrl, { credentials: 'same-origin' });
    if (!response.ok) return;
    const data = await response.json();
    const points = [...data.partners, ...data.bookings].map((p) => p.location);
    const map = $('map');
    map.replaceChildren();
    if (!points.length) return;
    const lats = points.map((p) => p.latitude), lngs = points.map((p) => p.longitude);
    const [minLat, maxLat, minLng, maxLng] = [Math.min(...lats), Math.max(...lats), Math.min(...lngs), Math.max(...lngs)];
    const x = (lng) => 20 + ((lng - minLng) / ((maxLng - minLng) || 1)) * 360;
    const y = (lat) => 280 - ((lat - minLat) / ((maxLat - minLat) || 1)) * 260;
    data.bookings.forEach((b) => {
      const mark = svg('rect', { x: x(b.location.longitude) - 4, y: y(b.location.latitude) - 4, width: 8, height: 8, fill: '#c0392b' });
      mark.append(svg('title', {})); mark.firstChild.textContent = `${b.bookingNumber} ${b.status}`;
      map.append(mark);
    });
    data.partners.forEach((p) => {
      const dot = svg('circle', { cx: x(p.location.longitude), cy: y(p.location.latitude), r: 4, fill: p.online ? '#2a7d2a' : '#999' });
      dot.append(svg('title', {})); dot.firstChild.textContent = p.name;
      map.append(dot);
    });
  }

  // ------------------------------------------------------------ chart
  async function drawChart() {
    const response = await fetch(cfg.timelineUrl, { credentials: 'same-origin' });
    if (!response.ok) return;
    const data = await response.json();
    const chart = $('chart');
    chart.replaceChildren(svg('line', { x1: 30, y1: 180, x2: 390, y2: 180, stroke: '#999' }));
    const series = Object.entries(data.series);
    const top = Math.max(1, ...series.flatMap(([, counts]) => counts));
    const legend = $('chart-legend');
    legend.replaceChildren();
    series.forEach(([status, counts]) => {
      const step = 360 / Math.max(1, counts.length - 1);
      const path = counts.map((n, i) => `${30 + i * step},${180 - (n / top) * 160}`).join(' ');
      chart.append(svg('polyline', { points: path, fill: 'none', stroke: COLOURS[status] || '#000', 'stroke-width': 2 }));
      const key = el('span', { style: `color:${COLOURS[status] || '#000'}` }, `■ ${status} (${counts.reduce((a, b) => a + b, 0)}) `);
      legend.append(key);
    });
  }

  drawMap(); drawChart();
  setInterval(drawMap, 10000);
  setInterval(drawChart, 30000);
})();
