// Postern web inbox. Plain DOM code, no framework, nothing loaded from elsewhere. Every value from a message is
// put into the page with textContent or as an attribute value, never parsed as HTML; the HTML body is shown only in
// a sandboxed frame (no scripts, own origin) whose page carries a Content-Security-Policy blocking remote content.
'use strict';

const api = 'api/v1';
const $ = (id) => document.getElementById(id);
let selected = null;
let messages = [];
let query = '';

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function addressText(a) {
  if (!a) return '';
  return a.name ? `${a.name} <${a.address}>` : a.address;
}

async function getJson(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`${res.status} ${path}`);
  return res.json();
}

async function loadList() {
  const q = query ? `&q=${encodeURIComponent(query)}` : '';
  const body = await getJson(`${api}/messages?limit=500${q}`);
  messages = body.messages;
  $('count').textContent = `${body.total} message${body.total === 1 ? '' : 's'}`;
  const ul = $('messages');
  ul.replaceChildren();
  for (const m of messages) {
    const li = el('li');
    li.dataset.id = m.id;
    if (m.id === selected) li.classList.add('selected');
    li.append(el('span', m.subject ?? '(no subject)', 'subject'), el('span', addressText(m.from), 'from'), el('span', ` · ${new Date(m.receivedAt).toLocaleString()}`, 'when'));
    li.addEventListener('click', () => open(m.id));
    ul.append(li);
  }
  if (selected && !messages.some((m) => m.id === selected)) closeDetail();
}

function showTab(name) {
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.tab === name);
  for (const t of document.querySelectorAll('.tab')) t.hidden = t.id !== `tab-${name}`;
}

function row(table, name, value) {
  const tr = el('tr');
  tr.append(el('th', name), el('td', value));
  table.append(tr);
}

async function open(id) {
  selected = id;
  for (const li of document.querySelectorAll('#messages li')) li.classList.toggle('selected', li.dataset.id === id);
  const m = await getJson(`${api}/messages/${encodeURIComponent(id)}`);
  $('detail').hidden = false;
  $('d-subject').textContent = m.subject ?? '(no subject)';
  const meta = $('d-meta');
  meta.replaceChildren();
  const add = (k, v) => {
    if (!v) return;
    meta.append(el('dt', k), el('dd', v));
  };
  add('From', addressText(m.from));
  add('To', m.to.map(addressText).join(', '));
  add('Cc', m.cc.map(addressText).join(', '));
  add('Date', m.date ? new Date(m.date).toLocaleString() : '');
  add('Mailbox', `${m.user} / ${m.mailbox} (uid ${m.uid})`);
  add('Size', `${m.size} octets`);

  const frame = $('html-frame');
  frame.hidden = m.html === null;
  $('no-html').hidden = m.html !== null;
  frame.src = m.html === null ? 'about:blank' : `${api}/messages/${encodeURIComponent(id)}/html`;
  $('d-text').textContent = m.text ?? '';

  const headers = $('d-headers');
  headers.replaceChildren();
  for (const h of m.headers) row(headers, h.name, h.value);

  const atts = $('d-attachments');
  atts.replaceChildren();
  for (const a of m.attachments) {
    const li = el('li');
    const link = el('a', a.filename ?? `attachment ${a.index}`);
    link.href = `${api}/messages/${encodeURIComponent(id)}/attachments/${a.index}`;
    link.setAttribute('download', '');
    li.append(link, el('span', ` ${a.contentType}, ${a.size} octets`));
    atts.append(li);
  }
  if (m.attachments.length === 0) atts.append(el('li', 'No attachments.'));

  const env = $('d-envelope');
  env.replaceChildren();
  const e = m.envelope;
  if (!e) row(env, 'Envelope', 'not recorded (not delivered over SMTP)');
  else {
    row(env, 'MAIL FROM', `<${e.mailFrom}>`);
    row(env, 'RCPT TO', e.rcptTo.map((r) => `<${r}>`).join(', '));
    row(env, 'HELO/EHLO', e.helo ?? '');
    row(env, 'Authenticated as', e.authUser ?? '(not authenticated)');
    row(env, 'Client', e.clientAddress ? `${e.clientAddress} port ${e.clientPort}` : '');
    row(env, 'TLS', e.tls ? `${e.tls.protocol} ${e.tls.cipher}` : 'none (plaintext)');
    if (e.tls && e.tls.clientCertSubject) row(env, 'Client certificate', e.tls.clientCertSubject);
    row(env, 'Received at', e.receivedAt);
  }

  const raw = await fetch(`${api}/messages/${encodeURIComponent(id)}/raw`);
  $('d-raw').textContent = raw.ok ? await raw.text() : '';
  if (!document.querySelector('#tabs button.active')) showTab('html');
}

function closeDetail() {
  selected = null;
  $('detail').hidden = true;
  $('html-frame').src = 'about:blank';
}

async function remove() {
  if (!selected) return;
  await fetch(`${api}/messages/${encodeURIComponent(selected)}`, { method: 'DELETE' });
  closeDetail();
  await loadList();
}

async function purge() {
  await fetch(`${api}/messages`, { method: 'DELETE' });
  closeDetail();
  await loadList();
}

function live() {
  const source = new EventSource(`${api}/events`);
  source.addEventListener('open', () => ($('status').textContent = 'live'));
  source.addEventListener('error', () => ($('status').textContent = 'reconnecting…'));
  const refresh = () => loadList().catch(() => undefined);
  source.addEventListener('message', refresh);
  source.addEventListener('deleted', refresh);
}

for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => showTab(b.dataset.tab));
$('delete').addEventListener('click', () => remove().catch(() => undefined));
$('purge').addEventListener('click', () => purge().catch(() => undefined));
let typing;
$('search').addEventListener('input', (ev) => {
  clearTimeout(typing);
  typing = setTimeout(() => {
    query = ev.target.value;
    loadList().catch(() => undefined);
  }, 200);
});
showTab('html');
loadList().catch(() => undefined);
live();
