// filestore's web page: plain JavaScript, no build step, nothing from another site.
// It talks to the API of the host that served it (/api/v1) and sends file bytes straight to
// storage through the URLs the API signs: one PUT for a small file, parts for a large one.
"use strict";

const API = "/api/v1";
const MIB = 1024 * 1024;
const MULTIPART_ABOVE = 16 * MIB; // above this, parts in parallel (the API decides the size)
const PARTS_IN_FLIGHT = 4;
const UPLOADS_IN_FLIGHT = 3;
// The token lives in this tab's sessionStorage: gone when the tab closes, never shared with
// other tabs, and not left on disk like localStorage (see the README's "Web page"). The login
// name, not a secret, is remembered in localStorage to fill the form.
const TOKEN_KEY = "filestore.token";
const LOGIN_KEY = "filestore.login";
// A share's link is shown once (the API keeps only its token's hash); the page remembers the
// links it made in this tab's sessionStorage, beside the token (which can do more), by share id.
const LINKS_KEY = "filestore.shares";
localStorage.removeItem(TOKEN_KEY); // where earlier versions of this page kept it

const $ = (selector) => document.querySelector(selector);
const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  folder: "/",
  search: null, // { text, folder } while search results are shown
  cursor: null,
  trashCursor: null,
  pageSize: 100,
  uploads: { done: 0, failed: 0 },
};
window.filestore = state; // what a test (or a curious user) can look at

class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("#error").hidden = true;
}

async function errorOf(response) {
  let code = `http_${response.status}`;
  let detail = response.statusText || `HTTP ${response.status}`;
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    code = body.error || code;
    detail = body.detail || detail;
  } catch {
    // storage answers XML: <Code>…</Code><Message>…</Message>
    const message = /<Message>([^<]*)<\/Message>/.exec(text);
    if (message) detail = message[1];
  }
  return new ApiError(response.status, code, detail);
}

async function api(method, path, { json, query, form } = {}) {
  const url = new URL(API + path, location.origin);
  for (const [key, value] of Object.entries(query || {})) url.searchParams.set(key, value);
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  const response = await fetch(url, { method, headers, body });
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && state.token) signOut();
    throw error;
  }
  return response;
}

// ---- accounts ---------------------------------------------------------------------------

async function signIn(login, password) {
  const answer = await api("POST", "/user/auth", { json: { login, password } });
  state.token = (await answer.json()).access_token;
  sessionStorage.setItem(TOKEN_KEY, state.token);
  localStorage.setItem(LOGIN_KEY, login);
  await show();
}

function signOut() {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(LINKS_KEY);
  show();
}

// ---- browsing ---------------------------------------------------------------------------

function folderFromHash() {
  const raw = decodeURIComponent(location.hash.slice(1) || "/");
  const folder = raw.startsWith("/") ? raw : `/${raw}`;
  return folder.endsWith("/") ? folder : `${folder}/`;
}

function parentOf(path) {
  const trimmed = path.endsWith("/") ? path.slice(0, -1) : path;
  return trimmed.slice(0, trimmed.lastIndexOf("/") + 1);
}

function nameOf(path) {
  const trimmed = path.endsWith("/") ? path.slice(0, -1) : path;
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

function size(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function link(label, target) {
  const a = document.createElement("a");
  a.href = `#${encodeURI(target)}`;
  a.textContent = label;
  return a;
}

function renderCrumbs(folder) {
  const nav = $("#crumbs");
  nav.replaceChildren();
  const names = folder.split("/").filter(Boolean);
  const home = link("Home", "/");
  dropTarget(home, "/");
  nav.append(home);
  let path = "/";
  for (const name of names) {
    path += `${name}/`;
    const sep = document.createElement("span");
    sep.className = "sep";
    sep.textContent = "/";
    const crumb = link(name, path);
    dropTarget(crumb, path);
    nav.append(sep, crumb);
  }
  $("#target-folder").textContent = folder;
}

function button(label, onClick, className = "link") {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

function cells(row, name, bytes, modified) {
  row.insertCell().append(...[name].flat());
  const sizeCell = row.insertCell();
  sizeCell.className = "num";
  sizeCell.textContent = bytes;
  const modifiedCell = row.insertCell();
  modifiedCell.className = "modified";
  modifiedCell.textContent = modified;
  const actions = row.insertCell();
  actions.className = "actions";
  return actions;
}

/** Drag a row onto a folder row or a breadcrumb to move it there. */
function draggable(row, path) {
  row.draggable = true;
  row.addEventListener("dragstart", (event) => {
    event.dataTransfer.setData("application/x-filestore-path", path);
    event.dataTransfer.effectAllowed = "move";
  });
}

function dropTarget(element, folder) {
  const moving = (event) => event.dataTransfer.types.includes("application/x-filestore-path");
  element.addEventListener("dragover", (event) => {
    if (!moving(event)) return;
    event.preventDefault();
    event.stopPropagation();
    element.classList.add("drop-target");
  });
  element.addEventListener("dragleave", () => element.classList.remove("drop-target"));
  element.addEventListener("drop", (event) => {
    if (!moving(event)) return;
    event.preventDefault();
    event.stopPropagation();
    element.classList.remove("drop-target");
    const source = event.dataTransfer.getData("application/x-filestore-path");
    if (source && source !== folder) run(() => moveTo(source, folder));
  });
}

function folderRow(body, folder) {
  const row = body.insertRow();
  row.className = "folder";
  row.dataset.folder = folder.path;
  const actions = cells(row, link(`${folder.name}/`, folder.path), "", when(folder.modified_at));
  actions.append(
    button("Zip", () => run(() => fetchFile({ path: folder.path, format: "zip" }, `${folder.name}.zip`))),
    button("Share", () => openShare(folder.path, "folder")),
    button("Rename", () => run(() => rename(folder.path))),
    button("Move", () => run(() => chooseAndMove(folder.path))),
    button("Delete", () => run(() => remove(folder.path)), "link danger"),
  );
  draggable(row, folder.path);
  dropTarget(row, folder.path);
}

function fileRow(body, file, label) {
  const row = body.insertRow();
  row.className = "file";
  row.dataset.path = file.path;
  const actions = cells(row, label, size(file.size), when(file.modified_at));
  actions.append(
    button("Download", () => run(() => download(file))),
    button("Versions", () => run(() => showVersions(file))),
    button("Share", () => openShare(file.path, "file")),
    button("Rename", () => run(() => rename(file.path))),
    button("Move", () => run(() => chooseAndMove(file.path))),
    button("Delete", () => run(() => remove(file.path)), "link danger"),
  );
  draggable(row, file.path);
}

/** One page of the folder's direct children (GET /folders): never the subtree below. */
async function showPage(cursor) {
  const folder = state.folder;
  const query = { path: folder, limit: String(state.pageSize) };
  if (cursor) query.cursor = cursor;
  const page = await (await api("GET", "/folders", { query })).json();
  if (folder !== state.folder || state.search) return;
  $("#account").textContent = page.account;
  const body = $("#listing tbody");
  if (!cursor) body.replaceChildren();
  for (const child of page.folders) folderRow(body, child);
  for (const file of page.files) fileRow(body, file, file.name);
  state.cursor = page.next_cursor;
  $("#more").hidden = !page.next_cursor;
  $("#empty").hidden = body.rows.length > 0;
}

async function showSearch(cursor) {
  const { text, folder } = state.search;
  const query = { q: text, limit: String(state.pageSize) };
  if (folder !== "/") query.path = folder;
  if (cursor) query.cursor = cursor;
  const page = await (await api("GET", "/files/search", { query })).json();
  const body = $("#listing tbody");
  if (!cursor) body.replaceChildren();
  for (const file of page.files) {
    const where = link(parentOf(file.path), parentOf(file.path));
    where.className = "note";
    fileRow(body, file, [file.name, " ", where]);
  }
  state.cursor = page.next_cursor;
  $("#more").hidden = !page.next_cursor;
  $("#empty").hidden = body.rows.length > 0;
  $("#search-note").textContent = `Files whose name contains “${text}” in ${folder}`;
}

async function refresh() {
  renderCrumbs(state.folder);
  const searching = Boolean(state.search);
  $("#search-note").hidden = !searching;
  $("#search-clear").hidden = !searching;
  await (searching ? showSearch(null) : showPage(null));
  await showUsage();
}

async function more() {
  await (state.search ? showSearch(state.cursor) : showPage(state.cursor));
}

async function showUsage() {
  const me = await (await api("GET", "/user/me")).json();
  const { files, versions, trash, quota } = me.usage;
  const used = files + versions + trash;
  const usage = $("#usage");
  usage.textContent = `${size(used)} of ${size(quota)}`;
  usage.title = `files ${size(files)}, versions ${size(versions)}, trash ${size(trash)}`;
}

// ---- folders, moves, downloads and deletions --------------------------------------------

async function makeFolder(name) {
  await api("POST", "/folders", { json: { path: `${state.folder}${name}/` } });
  await refresh();
}

async function moveTo(source, folder) {
  await api("POST", "/files/move", { json: { from: source, to: folder } });
  await refresh();
}

async function rename(path) {
  const name = prompt(`Rename ${path} to:`, nameOf(path));
  if (!name || name === nameOf(path)) return;
  if (name.includes("/")) throw new Error("A name cannot contain '/'; use Move.");
  // The full new path, without a trailing "/": a "to" ending with "/", or naming an existing
  // folder, would receive the entry inside it (as mv does), where a rename means a new name.
  const to = `${parentOf(path)}${name}`;
  if (document.querySelector(`#listing tr[data-folder="${CSS.escape(`${to}/`)}"]`)) {
    throw new Error(`'${to}/' exists already.`);
  }
  await api("POST", "/files/move", { json: { from: path, to } });
  await refresh();
}

/** The folder picker: browse folders (GET /folders), then move there. */
function chooseAndMove(source) {
  const dialog = $("#move-dialog");
  let target = parentOf(source);
  const list = async () => {
    $("#move-target").textContent = target;
    const query = { path: target, limit: "200" };
    const page = await (await api("GET", "/folders", { query })).json();
    const items = $("#move-folders");
    items.replaceChildren();
    for (const child of page.folders) {
      if (child.path === source) continue; // not into itself
      const item = document.createElement("li");
      item.append(
        button(`${child.name}/`, () => {
          target = child.path;
          run(list);
        }),
      );
      items.append(item);
    }
  };
  $("#move-title").textContent = `Move ${source}`;
  $("#move-up").onclick = () => {
    target = parentOf(target) || "/";
    run(list);
  };
  $("#move-here").onclick = () => {
    dialog.close();
    run(() => moveTo(source, target));
  };
  dialog.showModal();
  return list();
}

async function fetchFile(query, name) {
  let response;
  try {
    // The API answers a redirect to a presigned GET; fetch follows it (without our token).
    response = await api("GET", "/files/download", { query });
  } catch (error) {
    if (error instanceof ApiError) throw error;
    // Storage refused the cross-origin read (no CORS rule): let the API stream it instead.
    response = await api("GET", "/files/download", { query: { ...query, proxy: "true" } });
  }
  const blob = await response.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

async function download(file) {
  await fetchFile({ path: file.id }, file.name);
}

async function remove(path) {
  const what = path.endsWith("/") ? `the folder ${path} and everything in it` : path;
  if (!confirm(`Move ${what} to the trash?`)) return;
  await api("DELETE", "/files", { query: { path } });
  await refresh();
}

// ---- versions -----------------------------------------------------------------------------

async function showVersions(file) {
  const answer = await (await api("GET", "/files/versions", { query: { path: file.id } })).json();
  $("#versions-title").textContent = `Versions of ${answer.path}`;
  const body = $("#versions-listing tbody");
  body.replaceChildren();
  for (const version of answer.versions) {
    const row = body.insertRow();
    row.dataset.version = version.id;
    const bytes = row.insertCell();
    bytes.className = "num";
    bytes.textContent = size(version.size);
    row.insertCell().textContent = `${when(version.modified_at)}${version.current ? " (current)" : ""}`;
    const actions = row.insertCell();
    actions.className = "actions";
    actions.append(
      button("Download", () => run(() => fetchFile({ path: file.id, version: version.id }, file.name))),
    );
    if (!version.current) {
      actions.append(
        button("Restore", () =>
          run(async () => {
            await api("POST", `/files/versions/${version.id}/restore`);
            $("#versions-dialog").close();
            await refresh();
          }),
        ),
      );
    }
  }
  const dialog = $("#versions-dialog");
  if (!dialog.open) dialog.showModal();
}

// ---- shares -------------------------------------------------------------------------------

function knownLinks() {
  try {
    return JSON.parse(sessionStorage.getItem(LINKS_KEY) || "{}");
  } catch {
    return {};
  }
}

function rememberLink(id, url) {
  const links = knownLinks();
  if (url) links[id] = url;
  else delete links[id];
  sessionStorage.setItem(LINKS_KEY, JSON.stringify(links));
}

/** Copy an input's text: the Clipboard API, else select it and copy (older or http pages). */
async function copyField(input) {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.focus();
    input.select();
    if (!document.execCommand("copy")) throw new Error("Copying failed: select the link and copy it.");
  }
}

function shareError(message) {
  const box = $("#share-error");
  box.textContent = message;
  box.hidden = !message;
}

/** The Share dialog: expiry, password, download limit (and upload link for a folder). */
function openShare(path, kind) {
  const dialog = $("#share-dialog");
  dialog.dataset.path = path;
  dialog.dataset.kind = kind;
  $("#share-title").textContent = `Share ${path}`;
  $("#share-form").reset();
  $("#share-form").hidden = false;
  $("#share-result").hidden = true;
  $("#share-days-row").hidden = true;
  $("#share-upload-row").hidden = kind !== "folder";
  $("#share-max-row").hidden = false;
  $("#share-copied").hidden = true;
  shareError("");
  dialog.showModal();
}

function positive(text, what) {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${what}: a whole number, at least 1.`);
  return value;
}

async function createShare() {
  const dialog = $("#share-dialog");
  const body = { path: dialog.dataset.path };
  const expiry = $("#share-expiry").value;
  body.expires_in = expiry === "days" ? positive($("#share-days").value, "Days") * 86400 : Number(expiry);
  const password = $("#share-password").value;
  if (password) body.password = password;
  const upload = dialog.dataset.kind === "folder" && $("#share-upload").checked;
  const limit = $("#share-max").value.trim();
  if (upload) body.upload = true; // an upload link counts no downloads: no limit is sent
  else if (limit) body.max_downloads = positive(limit, "Download limit");
  const share = await (await api("POST", "/shares", { json: body })).json();
  rememberLink(share.id, share.url);
  $("#share-what").textContent = share.path;
  $("#share-until").textContent = when(share.expires_at);
  $("#share-url").value = new URL(share.url, location.href).href;
  $("#share-form").hidden = true;
  $("#share-result").hidden = false;
  $("#share-url").focus();
  $("#share-url").select();
}

/** My shares: every link with its target's current path, state, Copy link and Revoke. */
async function showShares() {
  const { shares } = await (await api("GET", "/shares")).json();
  const links = knownLinks();
  const body = $("#shares-listing tbody");
  body.replaceChildren();
  for (const share of shares) {
    const row = body.insertRow();
    row.dataset.share = share.id;
    row.dataset.path = share.path;
    const path = row.insertCell();
    path.className = "path";
    path.textContent = share.path;
    if (share.upload) {
      const note = document.createElement("span");
      note.className = "note";
      note.textContent = " (upload link)";
      path.append(note);
    }
    const url = share.url || links[share.id];
    const linkCell = row.insertCell();
    let field = null;
    if (url) {
      field = document.createElement("input");
      field.className = "link-field";
      field.readOnly = true;
      field.value = url;
      field.setAttribute("aria-label", `Link to ${share.path}`);
      linkCell.append(field);
    } else {
      linkCell.className = "note";
      linkCell.textContent = "shown once, when made";
    }
    const expired = new Date(share.expires_at) <= new Date();
    const expires = row.insertCell();
    expires.className = "when";
    expires.textContent = `${when(share.expires_at)}${expired ? " (expired)" : ""}`;
    row.insertCell().textContent = share.has_password ? "yes" : "no";
    const downloads = row.insertCell();
    downloads.className = "num";
    downloads.textContent =
      share.max_downloads === null ? String(share.downloads) : `${share.downloads} / ${share.max_downloads}`;
    const actions = row.insertCell();
    actions.className = "actions";
    if (field) {
      const copied = document.createElement("span");
      copied.className = "note";
      actions.append(
        copied,
        button("Copy link", () =>
          run(async () => {
            await copyField(field);
            copied.textContent = "Copied. ";
          }),
        ),
      );
    }
    actions.append(button("Revoke", () => run(() => revokeShare(share)), "link danger"));
  }
  $("#shares-empty").hidden = body.rows.length > 0;
}

async function revokeShare(share) {
  if (!confirm(`Revoke the link to ${share.path}? It stops working at once.`)) return;
  await api("DELETE", `/shares/${share.id}`);
  rememberLink(share.id, null);
  await showShares();
}

// ---- trash --------------------------------------------------------------------------------

async function showTrash(cursor) {
  const query = { limit: String(state.pageSize) };
  if (cursor) query.cursor = cursor;
  const page = await (await api("GET", "/trash", { query })).json();
  const body = $("#trash-listing tbody");
  if (!cursor) body.replaceChildren();
  for (const entry of page.entries) {
    const row = body.insertRow();
    row.dataset.entry = entry.id;
    row.dataset.path = entry.path;
    const path = row.insertCell();
    path.className = "path";
    path.textContent = entry.path;
    for (const text of [String(entry.files), size(entry.size)]) {
      const cell = row.insertCell();
      cell.className = "num";
      cell.textContent = text;
    }
    row.insertCell().textContent = when(entry.deleted_at);
    row.insertCell().textContent = when(entry.purge_at);
    const actions = row.insertCell();
    actions.className = "actions";
    actions.append(
      button("Restore", () => run(() => restore(entry))),
      button("Delete forever", () => run(() => purge(entry)), "link danger"),
    );
  }
  state.trashCursor = page.next_cursor;
  $("#trash-more").hidden = !page.next_cursor;
  $("#trash-empty").hidden = body.rows.length > 0;
  await showUsage();
}

async function restore(entry) {
  try {
    await api("POST", `/trash/${entry.id}/restore`);
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== "path_taken") throw error;
    const to = prompt(`${error.message}\nRestore into which folder instead?`, "/restored/");
    if (!to) return;
    await api("POST", `/trash/${entry.id}/restore`, { json: { to } });
  }
  await showTrash(null);
}

async function purge(entry) {
  if (!confirm(`Delete ${entry.path} for good? This cannot be undone.`)) return;
  await api("DELETE", `/trash/${entry.id}`);
  await showTrash(null);
}

async function emptyTrash() {
  if (!confirm("Delete everything in the trash for good? This cannot be undone.")) return;
  await api("DELETE", "/trash");
  await showTrash(null);
}

// ---- uploads ------------------------------------------------------------------------------

function progressRow(file) {
  const item = document.createElement("li");
  item.dataset.name = file.name;
  item.dataset.state = "sending";
  const name = document.createElement("span");
  name.textContent = file.name;
  const bar = document.createElement("progress");
  bar.max = file.size || 1;
  bar.value = 0;
  const note = document.createElement("span");
  note.className = "note";
  note.textContent = `0 / ${size(file.size)}`;
  item.append(name, bar, note);
  $("#uploads").append(item);
  return {
    update(sent) {
      bar.value = sent;
      note.textContent = `${size(sent)} / ${size(file.size)}`;
    },
    finish(message, failed = false) {
      item.dataset.state = failed ? "failed" : "done";
      if (!failed) bar.value = bar.max;
      note.textContent = message;
    },
  };
}

/** Rows of uploads that ended belong to the folder they went to: a folder change drops them
 * (those still sending stay, so their progress remains visible). */
function clearFinishedUploads() {
  for (const item of $("#uploads").querySelectorAll('li:not([data-state="sending"])')) {
    item.remove();
  }
}

function put(url, headers, body, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("PUT", url);
    for (const [name, value] of Object.entries(headers || {})) {
      // the browser computes Content-Length itself (and refuses to be told)
      if (name.toLowerCase() !== "content-length") request.setRequestHeader(name, value);
    }
    request.upload.onprogress = (event) => onProgress(event.loaded);
    request.onload = () => {
      if (request.status < 300) return resolve(request);
      const message = /<Message>([^<]*)<\/Message>/.exec(request.responseText || "");
      return reject(new Error(message ? message[1] : `storage answered ${request.status}`));
    };
    request.onerror = () => reject(new Error("The connection to storage failed."));
    request.send(body);
  });
}

async function sendParts(file, ticket, row) {
  const sent = new Map();
  const report = () => row.update([...sent.values()].reduce((a, b) => a + b, 0));
  let next = 1;
  const worker = async () => {
    while (next <= ticket.part_count) {
      const number = next;
      next += 1;
      const signed = await api("POST", `/files/uploads/${ticket.id}/parts`, {
        json: { parts: [{ number }] },
      });
      const [part] = (await signed.json()).parts;
      const start = (number - 1) * ticket.part_size;
      const blob = file.slice(start, Math.min(start + ticket.part_size, file.size));
      await put(part.url, part.headers, blob, (loaded) => {
        sent.set(number, loaded);
        report();
      });
      sent.set(number, blob.size);
      report();
    }
  };
  await Promise.all(Array.from({ length: PARTS_IN_FLIGHT }, worker));
}

async function complete(uploadId) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await api("POST", `/files/uploads/${uploadId}/complete`);
    if (response.status !== 202) return response.json();
    if (Date.now() > deadline) throw new Error("Storage has not shown the file yet.");
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function uploadFile(file, folder) {
  const row = progressRow(file);
  try {
    if (file.size === 0) throw new Error("Empty files cannot be stored.");
    const intent = { path: folder, name: file.name, size: file.size };
    if (file.type) intent.content_type = file.type;
    if (file.size > MULTIPART_ABOVE) intent.multipart = true;
    const pending = await (await api("POST", "/files/upload", { json: intent })).json();
    const ticket = pending.upload;
    if (ticket.method === "multipart") {
      await sendParts(file, ticket, row);
    } else {
      await put(ticket.url, ticket.headers, file, (loaded) => row.update(loaded));
    }
    await complete(ticket.id);
    row.finish(`${size(file.size)} stored`);
    state.uploads.done += 1;
  } catch (error) {
    row.finish(error.message, true);
    state.uploads.failed += 1;
    showError(`${file.name}: ${error.message}`);
  }
}

async function uploadAll(fileList) {
  clearError();
  const queue = [...fileList];
  const folder = state.folder;
  const worker = async () => {
    while (queue.length) {
      await uploadFile(queue.shift(), folder);
    }
  };
  await Promise.all(Array.from({ length: UPLOADS_IN_FLIGHT }, worker));
  if (state.folder === folder) await run(refresh);
}

// ---- wiring -------------------------------------------------------------------------------

async function run(action) {
  clearError();
  try {
    await action();
  } catch (error) {
    showError(error.message);
  }
}

async function show() {
  const signedIn = Boolean(state.token);
  const inTrash = signedIn && location.hash === "#trash";
  const inShares = signedIn && location.hash === "#shares";
  $("#auth").hidden = signedIn;
  $("#files").hidden = !signedIn || inTrash || inShares;
  $("#trash").hidden = !inTrash;
  $("#shares").hidden = !inShares;
  $("#shares-link").hidden = !signedIn;
  $("#account").hidden = !signedIn;
  $("#usage").hidden = !signedIn;
  $("#trash-link").hidden = !signedIn;
  $("#signout").hidden = !signedIn;
  document.body.dataset.signedIn = String(signedIn);
  document.body.dataset.view = inTrash ? "trash" : inShares ? "shares" : "files";
  if (inTrash) {
    await run(() => showTrash(null));
  } else if (inShares) {
    await run(showShares);
  } else if (signedIn) {
    const folder = folderFromHash();
    if (folder !== state.folder) {
      clearFinishedUploads();
      state.search = null;
      $("#search-text").value = "";
    }
    state.folder = folder;
    await run(refresh);
  } else {
    $("#login").value = localStorage.getItem(LOGIN_KEY) || "";
  }
}

function wire() {
  $("#signin").addEventListener("submit", (event) => {
    event.preventDefault();
    run(() => signIn($("#login").value, $("#password").value));
  });
  $("#register").addEventListener("click", () => {
    if (!$("#signin").reportValidity()) return;
    run(async () => {
      const login = $("#login").value;
      const password = $("#password").value;
      await api("POST", "/user/register", { json: { login, password } });
      await signIn(login, password);
    });
  });
  $("#signout").addEventListener("click", signOut);
  $("#picker").addEventListener("change", (event) => {
    const files = [...event.target.files];
    event.target.value = "";
    uploadAll(files);
  });
  $("#newfolder").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("#folder-name").value.trim().replace(/^\/+|\/+$/g, "");
    $("#folder-name").value = "";
    if (name) run(() => makeFolder(name));
  });
  $("#search").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("#search-text").value.trim();
    state.search = text ? { text, folder: state.folder } : null;
    run(refresh);
  });
  $("#search-clear").addEventListener("click", () => {
    state.search = null;
    $("#search-text").value = "";
    run(refresh);
  });
  $("#more").addEventListener("click", () => run(more));
  $("#trash-more").addEventListener("click", () => run(() => showTrash(state.trashCursor)));
  $("#empty-trash").addEventListener("click", () => run(emptyTrash));
  $("#share-expiry").addEventListener("change", () => {
    $("#share-days-row").hidden = $("#share-expiry").value !== "days";
  });
  $("#share-upload").addEventListener("change", () => {
    $("#share-max-row").hidden = $("#share-upload").checked;
  });
  $("#share-form").addEventListener("submit", (event) => {
    event.preventDefault();
    shareError("");
    createShare().catch((error) => shareError(error.message));
  });
  $("#share-copy").addEventListener("click", () => {
    copyField($("#share-url")).then(
      () => {
        $("#share-copied").hidden = false;
      },
      (error) => shareError(error.message),
    );
  });
  for (const close of document.querySelectorAll("#share-dialog [data-close]")) {
    close.addEventListener("click", () => $("#share-dialog").close());
  }
  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.types.includes("application/x-filestore-path")) return; // a row
    drop.classList.remove("over");
    const files = [...event.dataTransfer.files].filter((file) => file.size > 0 || file.type);
    uploadAll(files);
  });
  window.addEventListener("hashchange", () => show());
  show();
}

wire();
