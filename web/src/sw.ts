/// <reference lib="webworker" />
// The service worker: keeps the app shell (the page and its /assets/) so the page loads
// with no network, and touches nothing else (/graphql, /api/ go to the network as ever).
// The page is fetched from the network first, so a new build shows as soon as it can.
declare const self: ServiceWorkerGlobalScope;
export {};

const SHELL = 'graphql-todos-shell-v1';

const isShell = (url: URL) =>
  url.origin === self.location.origin && (url.pathname === '/' || url.pathname.startsWith('/assets/'));

/** The page and the assets it names: the ones it loaded before this worker ran. */
async function keepShell(): Promise<void> {
  const cache = await caches.open(SHELL);
  const page = await fetch('/', { cache: 'no-store' });
  if (!page.ok) return;
  const html = await page.clone().text();
  await cache.put('/', page);
  const assets = new Set(html.match(/\/assets\/[^"'\s)]+/g) ?? []);
  await cache.addAll([...assets]);
}

self.addEventListener('install', (event) => {
  event.waitUntil(keepShell().then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || !isShell(url)) return;
  event.respondWith(answer(event.request, url));
});

async function answer(request: Request, url: URL): Promise<Response> {
  const cache = await caches.open(SHELL);
  if (url.pathname.startsWith('/assets/')) {
    // Hashed names: an asset never changes under its name.
    const kept = await cache.match(request);
    if (kept) return kept;
    const fetched = await fetch(request);
    if (fetched.ok) await cache.put(request, fetched.clone());
    return fetched;
  }
  try {
    const fetched = await fetch(request);
    if (fetched.ok) await cache.put('/', fetched.clone());
    return fetched;
  } catch (error) {
    const kept = await cache.match('/');
    if (kept) return kept;
    throw error;
  }
}
