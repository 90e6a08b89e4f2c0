// The views of one user. Each reads through the audited admin API and returns the element
// to show; none has a control that writes anything.

import { get, userPath } from "./api.js";
import { el, empty, json, source, table, time, yesNo } from "./format.js";

/** Preferences in effect, each with the layer it comes from. */
export async function preferences(ctx) {
  const { body } = await get(userPath(ctx.userId, "/effective"));
  const fields = Object.keys(body.preference_sources);
  return el(
    "div",
    {},
    el("p", { class: "help" }, "Each value in effect and where it comes from: ",
      source("builtin"), " default, ", source("deployment"), " operator's default, ",
      source("user"), " the user's own, ", source("device"), " a device's override."),
    table(
      "Preferences in effect",
      ["Preference", "Value", "Source"],
      fields.map((field) => ({
        attributes: { "data-field": field },
        cells: [el("code", {}, field), json(body.preferences[field]), source(body.preference_sources[field])],
      })),
    ),
  );
}

/** The value cell of a setting: a secret never shows one. */
function settingValue(setting) {
  if (setting.redacted) {
    return el("span", { class: "secret" }, "Encrypted, last changed ", time(setting.updated_at));
  }
  return json(setting.value);
}

/** The user's stored settings: filter by category (server side), search by key (in the page). */
export async function settings(ctx) {
  const { body: registry } = await get("/api/v1/settings/schema");
  const category = el("select", { id: "settings-category", name: "category" },
    el("option", { value: "" }, "All categories"),
    registry.categories.map((c) => el("option", { value: c }, c)));
  const search = el("input", {
    id: "settings-search", name: "search", type: "search", autocomplete: "off",
    spellcheck: "false", placeholder: "e.g. scrobbling",
  });
  const results = el("div", { id: "settings-results" });
  const count = el("p", { class: "help", id: "settings-count", "aria-live": "polite" });
  let loaded = [];
  let nextCursor = null;

  const rows = () => {
    const needle = search.value.trim().toLowerCase();
    const shown = loaded.filter((s) => s.key.toLowerCase().includes(needle));
    count.textContent = `${shown.length} of ${loaded.length} loaded settings` +
      (nextCursor ? " (more on the server)" : "");
    results.replaceChildren(
      shown.length === 0
        ? empty(loaded.length === 0 ? "This user has no settings here." : "No loaded key matches the search.")
        : table(
          "Settings",
          ["Key", "Value", "Category", "Type", "Version", "Last changed", "History"],
          shown.map((s) => ({
            attributes: { "data-key": s.key, class: s.redacted ? "is-secret" : null },
            cells: [
              el("code", {}, s.key),
              settingValue(s),
              s.category ?? el("span", { class: "muted" }, "—"),
              s.data_type,
              String(s.version),
              time(s.updated_at),
              el("button", {
                type: "button", class: "secondary small",
                "aria-label": `History of ${s.key}`, onclick: () => ctx.openHistory(s.key),
              }, "History"),
            ],
          })),
        ),
      ...(nextCursor
        ? [el("button", { type: "button", class: "secondary", onclick: () => load(true).catch(ctx.fail) }, "Load more")]
        : []),
    );
  };

  const load = async (more) => {
    const query = new URLSearchParams({ limit: "200" });
    if (category.value) query.set("category", category.value);
    if (more && nextCursor) query.set("cursor", nextCursor);
    const { body } = await ctx.busy(get(userPath(ctx.userId, `/settings?${query}`)));
    loaded = more ? loaded.concat(body.settings) : body.settings;
    nextCursor = body.next_cursor ?? null;
    rows();
  };

  category.addEventListener("change", () => load(false).catch(ctx.fail));
  search.addEventListener("input", rows);
  await load(false);
  return el(
    "div",
    {},
    el("div", { class: "filters" },
      el("div", { class: "field" }, el("label", { for: "settings-category" }, "Category"), category),
      el("div", { class: "field" }, el("label", { for: "settings-search" }, "Search by key"), search)),
    count,
    results,
  );
}

/** The user's devices; each device's overrides on request. */
export async function devices(ctx) {
  const { body } = await get(userPath(ctx.userId, "/devices"));
  if (body.devices.length === 0) return empty("This user has no device that overrides anything.");
  const overrides = el("div", { id: "device-overrides" });
  const show = async (device) => {
    const query = new URLSearchParams({ device });
    const { body: view } = await ctx.busy(get(userPath(ctx.userId, `/effective?${query}`)));
    const prefs = Object.entries(view.preference_sources)
      .filter(([, layer]) => layer === "device")
      .map(([field]) => [el("code", {}, field), json(view.preferences[field]), "preference"]);
    const sets = Object.entries(view.settings)
      .filter(([, entry]) => entry.source === "device")
      .map(([key, entry]) => [el("code", {}, key), json(entry.value), "setting"]);
    overrides.replaceChildren(
      el("h3", { tabindex: "-1", id: "device-overrides-title" }, "Overrides of ", el("code", {}, device)),
      prefs.length + sets.length === 0
        ? empty("Nothing this device sets is in effect.")
        : table(`Overrides of ${device}`, ["Name", "Value", "Kind"], prefs.concat(sets)),
    );
    document.getElementById("device-overrides-title").focus();
  };
  return el(
    "div",
    {},
    table(
      "Devices",
      ["Device", "Preferences it overrides", "Settings it overrides", "Last change", "Overrides"],
      body.devices.map((d) => [
        el("code", {}, d.device_id),
        d.preferences.length ? d.preferences.join(", ") : el("span", { class: "muted" }, "none"),
        String(d.settings),
        time(d.updated_at),
        el("button", {
          type: "button", class: "secondary small", "aria-label": `Show the overrides of ${d.device_id}`,
          onclick: () => show(d.device_id).catch(ctx.fail),
        }, "Show"),
      ]),
    ),
    overrides,
  );
}

/** The user's connections to external services (never a token). */
export async function integrations(ctx) {
  let body;
  try {
    ({ body } = await get(userPath(ctx.userId, "/integrations")));
  } catch (error) {
    if (error.status === 404 && error.code === "route_not_found") {
      return empty("Integrations are not configured on this deployment.");
    }
    throw error;
  }
  return table(
    "Integrations",
    ["Service", "Connected", "Account", "Connected at", "Token expires", "Needs re-authorisation"],
    body.integrations.map((i) => [
      i.name,
      yesNo(i.connected, "Connected", "Not connected"),
      i.username ?? el("span", { class: "muted" }, "—"),
      time(i.connected_at),
      time(i.expires_at),
      yesNo(i.needs_reauth),
    ]),
  );
}

/** A paged list: the first page, then "Load older" until the last. */
async function paged(ctx, firstUrl, caption, columns, toRow, emptyText) {
  const container = el("div", {});
  const rows = [];
  let next = firstUrl;
  const loadMore = async () => {
    const page = await ctx.busy(get(next));
    rows.push(...page.body.map(toRow));
    next = page.next;
    container.replaceChildren(
      rows.length ? table(caption, columns, rows) : empty(emptyText),
      ...(next
        ? [el("button", { type: "button", class: "secondary", onclick: () => loadMore().catch(ctx.fail) }, "Load older")]
        : []),
    );
  };
  await loadMore();
  return container;
}

/** The kept versions of one setting. */
export async function history(ctx) {
  const input = el("input", {
    id: "history-key", name: "key", autocomplete: "off", spellcheck: "false",
    value: ctx.historyKey ?? "", required: true, placeholder: "ui.theme",
  });
  const results = el("div", { id: "history-results" });
  const show = async (key) => {
    ctx.historyKey = key;
    const url = userPath(ctx.userId, `/settings/${encodeURIComponent(key)}/history`);
    results.replaceChildren(
      await paged(ctx, url, `History of ${key}`, ["Version", "Change", "Value", "When", "By"], (h) => [
        String(h.version),
        h.op,
        h.op === "deleted" ? el("span", { class: "muted" }, "—") : h.value === null ? el("span", { class: "secret" }, "Encrypted (never kept)") : json(h.value),
        time(h.changed_at),
        h.actor,
      ], "Nothing is kept for this key."),
    );
  };
  const form = el("form", {
    class: "filters", novalidate: true,
    onsubmit: (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (key) show(key).catch(ctx.fail);
    },
  },
  el("div", { class: "field" }, el("label", { for: "history-key" }, "Setting key"), input),
  el("button", { type: "submit" }, "Show history"));
  if (ctx.historyKey) await show(ctx.historyKey);
  return el("div", {}, form, results);
}

/** Who has looked at the user's data: the audit trail, newest first. */
export async function audit(ctx) {
  const actions = {
    admin_read: "Support read the user's data",
    secret_read: "A secret's plaintext was read",
    token_read: "An integration token was read",
    defaults_write: "Deployment defaults changed",
  };
  return el(
    "div",
    {},
    el("p", { class: "help" }, "Every privileged read of this user's data, newest first. Your own reads are marked."),
    await paged(ctx, userPath(ctx.userId, "/audit"), "Audit trail",
      ["When", "Who", "Role", "What", "Key", "Request id"],
      (r) => ({
        attributes: { class: r.actor_id === ctx.me ? "mine" : null, "data-actor": r.actor_id },
        cells: [
          time(r.at),
          r.actor_id === ctx.me ? el("span", {}, el("code", {}, r.actor_id), " ", el("span", { class: "badge you" }, "you")) : el("code", {}, r.actor_id),
          r.actor_role,
          actions[r.action] ?? r.action,
          r.key ? el("code", {}, r.key) : el("span", { class: "muted" }, "—"),
          r.request_id ? el("code", { class: "request-id" }, r.request_id) : el("span", { class: "muted" }, "—"),
        ],
      }),
      "Nobody has looked at this user's data."),
  );
}
