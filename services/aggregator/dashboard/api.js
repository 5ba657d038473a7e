// The aggregator's read API (same origin) and its live updates (Server-Sent Events).

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-cache' });
  if (!response.ok) {
    let message = `${response.status}`;
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) message = `${response.status}: ${body.error.message}`;
    } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response.json();
}

export function viewPath(view) {
  return `/api/v1/views/${encodeURIComponent(view.dataset)}/${encodeURIComponent(view.view)}`;
}

export async function listViews() {
  return (await getJson('/api/v1/views')).views;
}

// The newest revision of each window starting in [from, to), oldest first.
export async function listFigures(view, from, to) {
  const params = new URLSearchParams({ from: from.toISOString().replace(/\.\d{3}Z$/, 'Z'), to: to.toISOString().replace(/\.\d{3}Z$/, 'Z'), limit: '10000' });
  return (await getJson(`${viewPath(view)}/figures?${params}`)).figures;
}

export function csvPath(view, from, to) {
  const params = new URLSearchParams({
    from: from.toISOString().replace(/\.\d{3}Z$/, 'Z'), to: to.toISOString().replace(/\.\d{3}Z$/, 'Z'), revisions: 'all', format: 'csv',
  });
  return `${viewPath(view)}/figures?${params}`;
}

// Live updates of `view` after the event id `after` (null: from now). `handlers`: figure(f),
// feedQuality(cities), reset(), state('live' | 'reconnecting'). A stream the server refuses
// (e.g. at its cap of live connections) is tried again after a pause, from the last event seen.
// Returns a function that closes it.
export function subscribe(view, after, handlers) {
  let last = after;
  let source = null;
  let retry = null;
  let closed = false;
  const open = () => {
    const query = last ? `?after=${encodeURIComponent(last)}` : '';
    source = new EventSource(`${viewPath(view)}/events${query}`);
    source.addEventListener('open', () => handlers.state('live'));
    source.addEventListener('figure', (e) => {
      if (e.lastEventId) last = e.lastEventId;
      handlers.figure(JSON.parse(e.data));
    });
    source.addEventListener('feed-quality', (e) => handlers.feedQuality(JSON.parse(e.data).cities));
    source.addEventListener('reset', () => handlers.reset());
    source.addEventListener('error', () => {
      handlers.state('reconnecting');
      // EventSource retries by itself unless the server refused the stream.
      if (source.readyState === EventSource.CLOSED && !closed) {
        source = null;
        retry = setTimeout(open, 15000);
      }
    });
  };
  open();
  return () => {
    closed = true;
    if (retry) clearTimeout(retry);
    if (source) source.close();
  };
}
