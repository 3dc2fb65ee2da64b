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
localStorage.removeItem(TOKEN_KEY); // where earlier versions of this page kept it

const $ = (selector) => document.querySelector(selector);
const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  folder: "/",
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
  show();
}

// ---- browsing ---------------------------------------------------------------------------

function folderFromHash() {
  const raw = decodeURIComponent(location.hash.slice(1) || "/");
  const folder = raw.startsWith("/") ? raw : `/${raw}`;
  return folder.endsWith("/") ? folder : `${folder}/`;
}

function openFolder(folder) {
  location.hash = encodeURI(folder);
}

async function listAll(folder) {
  const files = [];
  let cursor = null;
  let account = "";
  do {
    const query = { limit: "1000" };
    if (folder !== "/") query.path = folder;
    if (cursor) query.cursor = cursor;
    const page = await (await api("GET", "/files", { query })).json();
    account = page.account;
    files.push(...page.files);
    cursor = page.next_cursor;
  } while (cursor);
  return { account, files };
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

function renderCrumbs(folder) {
  const nav = $("#crumbs");
  nav.replaceChildren();
  const names = folder.split("/").filter(Boolean);
  const link = (label, target) => {
    const a = document.createElement("a");
    a.href = `#${encodeURI(target)}`;
    a.textContent = label;
    return a;
  };
  nav.append(link("Home", "/"));
  let path = "/";
  for (const name of names) {
    path += `${name}/`;
    const sep = document.createElement("span");
    sep.className = "sep";
    sep.textContent = "/";
    nav.append(sep, link(name, path));
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

async function refresh() {
  const folder = state.folder;
  renderCrumbs(folder);
  const { account, files } = await listAll(folder);
  $("#account").textContent = account;
  const folders = new Map();
  const here = [];
  for (const file of files) {
    const rest = file.path.slice(folder.length);
    const slash = rest.indexOf("/");
    if (slash === -1) {
      here.push(file);
    } else {
      const name = rest.slice(0, slash);
      const entry = folders.get(name) || { count: 0, bytes: 0, modified: "" };
      entry.count += 1;
      entry.bytes += file.size || 0;
      if (file.modified_at > entry.modified) entry.modified = file.modified_at;
      folders.set(name, entry);
    }
  }
  const body = $("#listing tbody");
  body.replaceChildren();
  for (const [name, entry] of [...folders].sort()) {
    const row = body.insertRow();
    row.className = "folder";
    row.dataset.folder = `${folder}${name}/`;
    const cell = row.insertCell();
    const a = document.createElement("a");
    a.href = `#${encodeURI(`${folder}${name}/`)}`;
    a.textContent = `${name}/`;
    const count = document.createElement("span");
    count.className = "note count";
    count.textContent = `${entry.count} file${entry.count === 1 ? "" : "s"}`;
    cell.append(a, " ", count);
    const bytes = row.insertCell();
    bytes.className = "num";
    bytes.textContent = size(entry.bytes);
    // Its newest file's time: the column means the same for folders and files.
    const modified = row.insertCell();
    modified.className = "modified";
    modified.textContent = entry.modified ? new Date(entry.modified).toLocaleString() : "";
    row.insertCell();
  }
  for (const file of here) {
    const row = body.insertRow();
    row.className = "file";
    row.dataset.path = file.path;
    row.insertCell().textContent = file.name;
    const bytes = row.insertCell();
    bytes.className = "num";
    bytes.textContent = size(file.size);
    const modified = row.insertCell();
    modified.className = "modified";
    modified.textContent = new Date(file.modified_at).toLocaleString();
    const actions = row.insertCell();
    actions.className = "actions";
    actions.append(
      button("Download", () => run(() => download(file))),
      button("Delete", () => run(() => remove(file)), "link danger"),
    );
  }
  $("#empty").hidden = files.length > 0;
}

// ---- downloads and deletions ----------------------------------------------------------------

async function download(file) {
  let response;
  try {
    // The API answers a redirect to a presigned GET; fetch follows it (without our token).
    response = await api("GET", "/files/download", { query: { path: file.id } });
  } catch (error) {
    if (error instanceof ApiError) throw error;
    // Storage refused the cross-origin read (no CORS rule): let the API stream it instead.
    response = await api("GET", "/files/download", { query: { path: file.id, proxy: "true" } });
  }
  const blob = await response.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = file.name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

async function remove(file) {
  if (!confirm(`Delete ${file.path}? This cannot be undone.`)) return;
  await api("DELETE", "/files", { query: { path: file.id } });
  await refresh();
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
  $("#auth").hidden = signedIn;
  $("#files").hidden = !signedIn;
  $("#account").hidden = !signedIn;
  $("#signout").hidden = !signedIn;
  document.body.dataset.signedIn = String(signedIn);
  if (signedIn) {
    const folder = folderFromHash();
    if (folder !== state.folder) clearFinishedUploads();
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
    if (name) openFolder(`${state.folder}${name}/`);
  });
  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const files = [...event.dataTransfer.files].filter((file) => file.size > 0 || file.type);
    uploadAll(files);
  });
  window.addEventListener("hashchange", () => show());
  show();
}

wire();
