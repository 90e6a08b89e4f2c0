// The admin API as the console uses it: every read carries the signed-in token as a bearer
// token, and every failure becomes an ApiError with a message a person can act on.

const TOKEN_KEY = "support-console.token";

/** The token of this tab: session storage only, never a URL, a cookie or a log. */
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    sessionStorage.setItem(TOKEN_KEY, value);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** What a JWT says about itself, read without verifying it (the server verifies). */
export function claims(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const json = new TextDecoder().decode(Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)));
    const parsed = JSON.parse(json);
    return parsed && typeof parsed === "object" ? parsed : null;
  } catch {
    return null;
  }
}

/** A failed read: `status` 0 when the service could not be reached. */
export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(describe(status, problem, retryAfter));
    this.status = status;
    this.code = problem?.code ?? null;
  }

  /** The token is no good any more: the person must sign in again. */
  get signedOut() {
    return this.status === 401;
  }

  /** The token is valid but is not an admin's. */
  get forbidden() {
    return this.status === 403;
  }
}

function describe(status, problem, retryAfter) {
  const detail = problem?.detail ? ` ${problem.detail}` : "";
  switch (status) {
    case 0:
      return "The service cannot be reached. Check the connection and try again.";
    case 401:
      return "Your session has ended: the token expired or is no longer accepted. Sign in again.";
    case 403:
      return "This token does not have the admin role. Sign in with a support (admin) token.";
    case 429:
      return `Too many requests for this token. Try again in ${retryAfter ?? "a few"} seconds.`;
    case 503:
      return "The service cannot reach its database right now, so nothing can be shown. Try again in a moment.";
    default:
      if (status >= 500) return `The service failed (${status}).${detail}`;
      return `${problem?.title ?? `The request failed (${status})`}.${detail}`;
  }
}

/** The URL of the next page, from a `Link: <url>; rel="next"` header. */
function nextPage(link) {
  const match = link && /<([^>]+)>\s*;\s*rel="next"/.exec(link);
  return match ? match[1] : null;
}

/**
 * GETs `path` (same origin) as the signed-in admin; resolves to `{ body, next }` where `next`
 * is the URL of the following page, when the answer is paged.
 */
export async function get(path) {
  let response;
  try {
    response = await fetch(path, {
      headers: { Accept: "application/json", Authorization: `Bearer ${session.token}` },
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, null, null);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, body, response.headers.get("Retry-After"));
  }
  return { body, next: nextPage(response.headers.get("Link")) };
}

/** The admin API's path for `userId`, with `rest` appended. */
export function userPath(userId, rest) {
  return `/api/v1/admin/users/${encodeURIComponent(userId)}${rest}`;
}
