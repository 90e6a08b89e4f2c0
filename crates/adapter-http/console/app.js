// The console's shell: sign-in, finding a user, switching views, and the loading and error
// states around every read. The token lives in session storage only (see api.js); the
// address bar holds only the user and the view, so a link can be shared without a secret.

import { claims, session } from "./api.js";
import { el } from "./format.js";
import * as views from "./views.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TITLES = {
  preferences: "Preferences",
  settings: "Settings",
  devices: "Devices",
  integrations: "Integrations",
  history: "History",
  audit: "Who has looked",
};

const $ = (id) => document.getElementById(id);
const state = { userId: null, view: "preferences", historyKey: null, expiry: null, render: 0 };

function show(section) {
  $("sign-in").hidden = section !== "sign-in";
  $("workspace").hidden = section !== "workspace";
  $("session").hidden = section !== "workspace";
}

function notice(id, message) {
  const node = $(id);
  node.textContent = message ?? "";
  node.hidden = !message;
}

/** Why a token cannot be used here, or null when it looks usable (the server decides). */
function refusal(token) {
  const said = claims(token);
  if (!said) return "This is not a token: paste the whole bearer token (three parts separated by dots).";
  const roles = Array.isArray(said.roles) ? said.roles : [];
  if (!roles.includes("admin")) {
    return "This token does not have the admin role. Sign in with a support (admin) token.";
  }
  if (typeof said.exp === "number" && said.exp * 1000 <= Date.now()) {
    return "This token has expired. Get a new one and sign in again.";
  }
  return null;
}

function signOut(message) {
  session.clear();
  clearTimeout(state.expiry);
  $("user").hidden = true;
  $("view").replaceChildren();
  show("sign-in");
  notice("sign-in-message", message);
  $("token").focus();
}

function signedIn() {
  const said = claims(session.token) ?? {};
  $("signed-in-as").textContent = `Signed in as ${said.sub ?? "an admin"}`;
  clearTimeout(state.expiry);
  if (typeof said.exp === "number") {
    // setTimeout holds at most 2^31-1 ms (about 24 days).
    const remaining = Math.min(said.exp * 1000 - Date.now(), 2 ** 31 - 1);
    state.expiry = setTimeout(() => signOut("Your session has ended: the token expired. Sign in again."), remaining);
  }
  notice("sign-in-message", null);
  show("workspace");
}

function status(message) {
  $("status").textContent = message;
}

/** Shows a failed read where the view would be, or signs out when the token is refused. */
function fail(error) {
  if (error?.signedOut || error?.forbidden) {
    signOut(error.message);
    return;
  }
  status("");
  $("view").setAttribute("aria-busy", "false");
  $("view").replaceChildren(
    el("div", { class: "notice error", role: "alert" },
      el("p", {}, error?.message ?? String(error)),
      el("button", { type: "button", class: "secondary", onclick: () => render() }, "Try again")),
  );
}

function context() {
  return {
    userId: state.userId,
    me: claims(session.token)?.sub ?? null,
    get historyKey() {
      return state.historyKey;
    },
    set historyKey(key) {
      state.historyKey = key;
    },
    openHistory(key) {
      state.historyKey = key;
      select("history");
    },
    fail,
    /** Marks the view busy while `promise` runs. */
    async busy(promise) {
      const view = $("view");
      view.setAttribute("aria-busy", "true");
      status("Loading…");
      try {
        return await promise;
      } finally {
        view.setAttribute("aria-busy", "false");
        status("");
      }
    },
  };
}

async function render() {
  const ticket = ++state.render;
  const view = $("view");
  const title = TITLES[state.view];
  view.setAttribute("aria-busy", "true");
  view.setAttribute("aria-label", title);
  view.replaceChildren(el("p", { class: "loading" }, `Loading ${title.toLowerCase()}…`));
  status(`Loading ${title.toLowerCase()}…`);
  try {
    const content = await views[state.view](context());
    if (ticket !== state.render) return; // another view was chosen meanwhile
    view.replaceChildren(content);
    view.setAttribute("aria-busy", "false");
    status(`${title}: loaded.`);
  } catch (error) {
    if (ticket === state.render) fail(error);
  }
}

function select(view) {
  state.view = TITLES[view] ? view : "preferences";
  // One tab stop for the whole list (the chosen view); arrows move between the others.
  for (const tab of tabs()) {
    const chosen = tab.dataset.view === state.view;
    tab.setAttribute("aria-selected", String(chosen));
    tab.tabIndex = chosen ? 0 : -1;
    if (chosen) $("view").setAttribute("aria-labelledby", tab.id);
  }
  history.replaceState(null, "", `#user=${state.userId}&view=${state.view}`);
  return render();
}

function tabs() {
  return [...$("tabs").querySelectorAll("[role=tab]")];
}

/** The tabs pattern: Left/Right (wrapping), Home and End move the focus; Enter opens. */
function moveBetweenTabs(event) {
  const all = tabs();
  const at = all.indexOf(document.activeElement);
  if (at < 0) return;
  const to = {
    ArrowRight: (at + 1) % all.length,
    ArrowLeft: (at - 1 + all.length) % all.length,
    Home: 0,
    End: all.length - 1,
  }[event.key];
  if (to === undefined) return;
  event.preventDefault();
  all[to].focus();
}

function open(userId, view) {
  state.userId = userId.toLowerCase();
  state.historyKey = null;
  $("user-id").value = state.userId;
  $("user-label").textContent = state.userId;
  $("user").hidden = false;
  return select(view);
}

function fromAddress() {
  const params = new URLSearchParams(location.hash.slice(1));
  const user = params.get("user");
  return user && UUID.test(user) ? { user, view: params.get("view") ?? "preferences" } : null;
}

function start() {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    const problem = token ? refusal(token) : "Paste an admin token first.";
    if (problem) {
      notice("sign-in-message", problem);
      $("token").focus();
      return;
    }
    session.token = token;
    $("token").value = "";
    signedIn();
    const linked = fromAddress();
    if (linked) open(linked.user, linked.view);
    $("user-id").focus();
  });
  $("sign-out").addEventListener("click", () => signOut("Signed out."));
  $("lookup").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("user-id").value.trim();
    if (!UUID.test(id)) {
      notice("user-id-error", "A user id is a UUID, such as 7b3c1c0e-5a7e-4d2b-9f1a-2c6d8e4f0a11.");
      $("user-id").setAttribute("aria-invalid", "true");
      return;
    }
    notice("user-id-error", null);
    $("user-id").removeAttribute("aria-invalid");
    open(id, state.view);
  });
  $("tabs").addEventListener("click", (event) => {
    const tab = event.target.closest("[role=tab]");
    if (tab) select(tab.dataset.view);
  });
  $("tabs").addEventListener("keydown", moveBetweenTabs);

  const token = session.token;
  const problem = token ? refusal(token) : null;
  if (!token || problem) {
    signOut(problem);
    return;
  }
  signedIn();
  const linked = fromAddress();
  if (linked) open(linked.user, linked.view);
  else $("user-id").focus();
}

// A fault of the page itself is shown, never a blank or half-drawn page.
window.addEventListener("error", (event) => showFault(event.message));
window.addEventListener("unhandledrejection", (event) => showFault(String(event.reason)));

function showFault(message) {
  const main = $("main");
  main.prepend(el("p", { class: "notice error", role: "alert" }, `The console failed: ${message}. Reload the page.`));
}

start();
