// Herald web chat: the whole page behaviour, in plain JavaScript with no
// build step. It talks to the API described in API.md: POST api/messages,
// GET api/history, and the event stream GET api/events, read with fetch()
// (not EventSource) so that it can send the Authorization header.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const scroller = $('scroll');
  const messages = $('messages');
  const empty = $('empty');
  const typing = $('typing');
  const input = $('input');
  const form = $('composer');
  const statusEl = $('status');
  const banner = $('banner');

  const TOKEN_KEY = 'herald.token';
  const CONVERSATION_KEY = 'herald.conversation';
  const WATCHDOG_MS = 45000; // three missed keepalives: the stream is dead
  const TYPING_MS = 6000;

  // The token comes in the URL fragment (never sent to the server in a
  // request line or a Referer); keep it for this tab and take it out of
  // the address bar.
  function readToken() {
    const params = new URLSearchParams(location.hash.slice(1));
    const t = params.get('token');
    if (t !== null) {
      sessionStorage.setItem(TOKEN_KEY, t);
      history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY) || '';
  }
  const token = readToken();

  function randomId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  let conversation = localStorage.getItem(CONVERSATION_KEY) || '';
  if (!/^[A-Za-z0-9_-]{8,64}$/.test(conversation)) {
    conversation = randomId();
    localStorage.setItem(CONVERSATION_KEY, conversation);
  }

  let cursor = ''; // where the event stream resumes
  const bots = new Map(); // bot message id -> element

  function api(path, init = {}) {
    const headers = new Headers(init.headers);
    if (token) headers.set('Authorization', 'Bearer ' + token);
    return fetch(path, { ...init, headers, cache: 'no-store' });
  }

  async function problem(res) {
    if (res.status === 401) {
      return 'this chat needs an access token: open the link that ends in #token=…';
    }
    try {
      const body = await res.json();
      if (body && body.error) return body.error;
    } catch {
      // not JSON: fall through
    }
    return `${res.status} ${res.statusText}`.trim();
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // --- view ---------------------------------------------------------------

  function setStatus(text, state) {
    statusEl.textContent = text;
    statusEl.className = 'status ' + (state || '');
  }

  function showBanner(text, retry) {
    banner.querySelector('.text').textContent = text;
    const button = banner.querySelector('.retry');
    button.hidden = !retry;
    button.onclick = retry ? () => { hideBanner(); retry(); } : null;
    banner.hidden = false;
  }

  function hideBanner() {
    banner.hidden = true;
  }

  // change runs fn and keeps the view at the bottom if it was there.
  function change(fn) {
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    fn();
    empty.hidden = messages.childElementCount > 0 || !typing.hidden;
    if (atBottom) scroller.scrollTop = scroller.scrollHeight;
  }

  function bubble(kind, id) {
    const el = document.createElement('div');
    el.className = 'msg ' + kind;
    if (id) el.dataset.id = id;
    const body = document.createElement('div');
    body.className = 'body';
    el.append(body);
    messages.append(el);
    return el;
  }

  function addUser(text, id) {
    const el = bubble('user', id);
    el.querySelector('.body').textContent = text;
    return el;
  }

  // The server renders the markdown and drops raw HTML, so its HTML is
  // safe to insert; links open in a new tab without a referrer.
  function setBotHTML(el, html) {
    el.querySelector('.body').innerHTML = html;
    for (const a of el.querySelectorAll('a[href]')) {
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
    }
  }

  function addBot(html, id) {
    const el = bubble('bot', id);
    setBotHTML(el, html);
    if (id) bots.set(id, el);
    return el;
  }

  function clearView() {
    change(() => {
      messages.replaceChildren();
      bots.clear();
      hideTyping();
    });
  }

  let typingTimer = 0;
  function showTyping() {
    clearTimeout(typingTimer);
    change(() => { typing.hidden = false; });
    typingTimer = setTimeout(hideTyping, TYPING_MS);
  }

  function hideTyping() {
    clearTimeout(typingTimer);
    typing.hidden = true;
  }

  function showError(el, text, retry) {
    el.querySelector('.error')?.remove();
    const box = document.createElement('div');
    box.className = 'error';
    const msg = document.createElement('span');
    msg.textContent = text;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'retry';
    button.textContent = 'Retry';
    button.addEventListener('click', retry);
    box.append(msg, button);
    change(() => el.append(box));
  }

  // --- events -------------------------------------------------------------

  function onEvent(name, data, id) {
    if (id) cursor = id;
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    switch (name) {
      case 'message': {
        // New, or the current state of one replayed after a reconnect.
        hideTyping();
        const el = bots.get(m.id);
        change(() => (el ? setBotHTML(el, m.html) : addBot(m.html, m.id)));
        break;
      }
      case 'edit': {
        // An edit of a message this view does not show (cleared by "New
        // conversation") stays hidden.
        const el = bots.get(m.id);
        if (el) {
          hideTyping();
          change(() => setBotHTML(el, m.html));
        }
        break;
      }
      case 'delete': {
        const el = bots.get(m.id);
        if (el) {
          bots.delete(m.id);
          change(() => el.remove());
        }
        break;
      }
      case 'typing':
        showTyping();
        break;
    }
  }

  // dispatch parses one event-stream block (the server writes LF only).
  function dispatch(block) {
    let name = 'message';
    let id = '';
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
    if (data.length) onEvent(name, data.join('\n'), id);
  }

  // stream keeps the event stream open for as long as the page lives,
  // reconnecting after errors; the cursor makes the server replay what
  // changed in between. onOpen runs once, at the first connection.
  async function stream(onOpen) {
    let delay = 500;
    for (;;) {
      const abort = new AbortController();
      let watchdog = 0;
      const pet = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => abort.abort(), WATCHDOG_MS);
      };
      try {
        pet();
        const query = new URLSearchParams({ conversation });
        if (cursor) query.set('after', cursor);
        const res = await api('api/events?' + query, { signal: abort.signal });
        if (!res.ok) throw new Error(await problem(res));
        hideBanner();
        setStatus('connected', 'online');
        delay = 500;
        onOpen();
        onOpen = () => {};
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          pet();
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (err) {
        if (unreachable(err)) showBanner('Cannot reach Herald, retrying…');
        else if (!abort.signal.aborted) showBanner('Disconnected: ' + err.message + '. Reconnecting…');
      } finally {
        clearTimeout(watchdog);
      }
      setStatus('reconnecting…', 'offline');
      await sleep(delay);
      delay = Math.min(delay * 2, 10000);
    }
  }

  // --- sending ------------------------------------------------------------

  // unreachable tells a request that reached no server (fetch's TypeError,
  // "Failed to fetch" in Chromium) from one Herald answered with an error.
  function unreachable(err) {
    return err instanceof TypeError;
  }

  // post sends text; the same id on a retry makes the server take it once.
  async function post(text, id) {
    try {
      const res = await api('api/messages', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ conversation, text, id }),
      });
      if (res.status === 202) return { id: (await res.json()).id };
      return { error: await problem(res) };
    } catch (err) {
      return { error: unreachable(err) ? 'cannot reach Herald' : err.message };
    }
  }

  async function deliver(el, text, id) {
    el.classList.remove('failed');
    el.classList.add('sending');
    el.querySelector('.error')?.remove();
    const res = await post(text, id);
    el.classList.remove('sending');
    if (res.error) {
      el.classList.add('failed');
      showError(el, 'Not sent: ' + res.error, () => deliver(el, text, id));
      return;
    }
    el.dataset.id = res.id;
  }

  function send() {
    const text = input.value;
    if (!text.trim()) return;
    input.value = '';
    resize();
    let el;
    change(() => { el = addUser(text); });
    scroller.scrollTop = scroller.scrollHeight;
    deliver(el, text, randomId());
  }

  // startOver asks the gateway for a new session: it answers with a
  // confirmation, which arrives on the stream into the cleared view.
  async function startOver() {
    clearView();
    const res = await post('/new', randomId());
    if (res.error) showBanner('Could not start a new conversation: ' + res.error, startOver);
  }

  function resize() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight, 200) + 'px';
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    send();
    input.focus();
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  input.addEventListener('input', resize);
  $('new').addEventListener('click', startOver);

  // --- start --------------------------------------------------------------

  async function start() {
    setStatus('loading…');
    let body;
    try {
      const res = await api('api/history?' + new URLSearchParams({ conversation }));
      if (!res.ok) throw new Error(await problem(res));
      body = await res.json();
    } catch (err) {
      setStatus('offline', 'offline');
      if (unreachable(err)) {
        showBanner('Cannot reach Herald, retrying…');
        setTimeout(start, 2000);
      } else {
        showBanner('Could not load the conversation: ' + err.message, start);
      }
      return;
    }
    hideBanner();
    change(() => {
      messages.replaceChildren();
      bots.clear();
      for (const m of body.messages || []) {
        if (m.role === 'user') addUser(m.text, m.id);
        else addBot(m.html, m.id);
      }
    });
    scroller.scrollTop = scroller.scrollHeight;
    cursor = body.cursor || '';
    stream(() => { document.body.dataset.ready = '1'; });
  }

  start();
})();
