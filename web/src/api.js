// The dashboard's only door to the server: every call goes through request(), which adds
// `Authorization: Bearer <key>` (the API key kept in sessionStorage, so it dies with the tab)
// and turns RFC 9457 problem+json bodies into ApiError values carrying `detail` and `field`.
export const API_PREFIX = '/api/automated-optimization';
const KEY_STORAGE = 'fulcrum.apiKey';

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

export class ApiError extends Error {
  constructor(status, detail, field, title) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;   // 0 when the server could not be reached
    this.detail = detail;
    this.field = field;     // the offending input, when the server named one
    this.title = title;
  }
}

// Calls `path` under the API prefix. `body` (an object) is sent as JSON. Resolves to the
// parsed JSON (null for an empty body); rejects with ApiError.
export async function request(method, path, body) {
  const headers = { Accept: 'application/json, application/problem+json' };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API_PREFIX + path, init);
  } catch (error) {
    throw new ApiError(0, `The server could not be reached (${error.message}).`);
  }
  const text = await response.text();
  let document = null;
  if (text) {
    try {
      document = JSON.parse(text);
    } catch {
      if (!response.ok) throw new ApiError(response.status, text.slice(0, 300));
      throw new ApiError(response.status, 'The server sent a response that is not JSON.');
    }
  }
  if (!response.ok) {
    const problem = document && typeof document === 'object' ? document : {};
    throw new ApiError(response.status, problem.detail, problem.field,
                       problem.title || response.statusText);
  }
  return document;
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body);
export const enc = encodeURIComponent;
