// The REST API as the console sees it: fetch with the admin token as a Bearer header.
// The token lives in sessionStorage only (gone when the browser session ends); it is never put in
// a URL, never logged. Without a token the server decides: loopback clients may need none.

const TOKEN_KEY = "media-mgr.admin-token";

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || "error";
    this.detail = detail || "";
  }
  // What an operator should read: "415 unsupported_media_type: not WAV or MP3 ..."
  describe() {
    return `${this.status} ${this.code}${this.detail ? ": " + this.detail : ""}`;
  }
}

export const auth = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token) {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    document.dispatchEvent(new CustomEvent("auth-changed"));
  },
};

function headers(extra) {
  const h = new Headers(extra || {});
  const token = auth.token;
  if (token) h.set("Authorization", `Bearer ${token}`);
  return h;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

async function failure(response) {
  let code = "", detail = "";
  try {
    const body = await response.json();
    code = body.error || "";
    detail = body.detail || "";
  } catch {
    detail = response.statusText;
  }
  const error = new ApiError(response.status, code, detail);
  if (response.status === 401 || response.status === 403) {
    document.dispatchEvent(new CustomEvent("auth-needed", { detail: error }));
  }
  return error;
}

// One call. `json` is sent as JSON, `body` as it is (FormData for uploads). Answers parsed JSON,
// text for text/* bodies, a Blob with {blob: true}, or null for 204.
export async function api(method, path, { json, body, blob, signal } = {}) {
  const init = { method, headers: headers(), signal, cache: "no-store" };
  if (json !== undefined) {
    init.headers.set("Content-Type", "application/json");
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  if (blob) return response.blob();
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) return response.json();
  return response.text();
}

// An upload with progress (fetch cannot report it): XMLHttpRequest, the same header and errors.
export function upload(method, path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    const token = auth.token;
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress?.(e.loaded / e.total));
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", "the connection failed")));
    xhr.addEventListener("load", async () => {
      const response = new Response(xhr.responseText || null, {
        status: xhr.status, headers: { "content-type": xhr.getResponseHeader("content-type") || "" },
      });
      if (response.ok) resolve(await response.json());
      else reject(await failure(response));
    });
    xhr.send(form);
  });
}

// GET for the unauthenticated probes (/readyz answers 503 with a body worth showing).
export async function probe(path) {
  const response = await fetch(path, { cache: "no-store" });
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  return { status: response.status, body };
}

// A stream URL issued by the API, made relative to this page's origin: the server may write its
// public host into it, while the browser reached it by another name.
export async function streamPath(mediaName, format) {
  const { stream_url } = await api("POST", "/v1/stream-urls", {
    json: { media_name: mediaName, stream_type: "new", format },
  });
  const url = new URL(stream_url.replace(/^shout:/, "http:"));
  return url.pathname + url.search;
}
