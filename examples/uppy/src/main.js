// filestore + Uppy 6: sign in, then upload through the Dashboard straight to storage.
// @uppy/aws-s3 sends every S3 request itself and asks POST /files/uploads/sign to sign it.
import AwsS3 from "@uppy/aws-s3";
import Uppy from "@uppy/core";
import Dashboard from "@uppy/dashboard";
import "@uppy/core/css/style.min.css";
import "@uppy/dashboard/css/style.min.css";

const params = new URLSearchParams(window.location.search);
const $ = (id) => document.getElementById(id);
$("api").value = params.get("api") || "http://127.0.0.1:8080/api/v1";

let token = null;
const api = () => $("api").value.replace(/\/+$/, "");

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function call(path, options = {}) {
  const response = await fetch(`${api()}${path}`, {
    ...options,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(options.body ? { "Content-Type": "application/json" } : {}),
      ...options.headers,
    },
  });
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    // The API's errors are {"error", "detail"}, CORS headers included.
    throw new Error(`${body?.error ?? response.status}: ${body?.detail ?? response.statusText}`);
  }
  return body;
}

async function showFiles() {
  const { files } = await call(`/files?path=${encodeURIComponent(folder())}`);
  const rows = files.map((file) => {
    const row = document.createElement("tr");
    for (const value of [file.path, file.size, file.content_type]) {
      const cell = document.createElement("td");
      cell.textContent = String(value);
      row.append(cell);
    }
    return row;
  });
  $("files").querySelector("tbody").replaceChildren(...rows);
  $("files").hidden = false;
}

function folder() {
  const value = $("folder").value.trim() || "/";
  return value.endsWith("/") ? value : `${value}/`;
}

// What the test (and a curious reader) can inspect.
window.filestore = { results: [], errors: [], parts: {}, showFiles };

// Each target path's file size, from generateObjectKey to the sign request that starts it.
const sizes = new Map();

function startUppy() {
  const uppy = new Uppy({ autoProceed: true })
    .use(Dashboard, { inline: true, target: "#uppy", height: 360, proudlyDisplayPoweredByUppy: false })
    .use(AwsS3, {
      // Uppy's default key (<uuid>-<name>) is not a path: the API reads the key as the target.
      // Its sign requests carry no size; the page remembers each file's, so that the API
      // reserves exactly that much of the quota (and pins a PutObject to it).
      generateObjectKey: (file) => {
        const key = `${folder()}${file.name}`;
        sizes.set(key, file.size);
        return key;
      },
      // One API call per S3 request; the answer is {url, key?, fields?}.
      signRequest: (request) => {
        const starts = !request.uploadId && sizes.get(request.key) > 0;
        const body = starts ? { ...request, size: sizes.get(request.key) } : request;
        return call("/files/uploads/sign", { method: "POST", body: JSON.stringify(body) });
      },
    });
  uppy.on("upload-success", (file, response) => {
    window.filestore.results.push({ name: file.name, size: file.size, key: response.body?.key });
  });
  uppy.on("s3-multipart:part-uploaded", (file) => {
    window.filestore.parts[file.name] = (window.filestore.parts[file.name] ?? 0) + 1;
  });
  uppy.on("upload-error", (file, error) => {
    window.filestore.errors.push({ name: file?.name, message: String(error?.message ?? error) });
    say(`${file?.name}: ${error?.message ?? error}`, true);
  });
  uppy.on("complete", async () => {
    // Storage notifies the API, whose worker confirms each file a moment later.
    setTimeout(() => showFiles().catch((error) => say(error.message, true)), 1000);
  });
  window.filestore.uppy = uppy;
}

$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const answer = await call("/user/auth", {
      method: "POST",
      body: JSON.stringify({ login: $("login").value, password: $("password").value }),
    });
    token = answer.access_token;
    $("signin").hidden = true;
    $("target").hidden = false;
    say(`Signed in as ${$("login").value}. Drop files below.`);
    startUppy();
    document.body.dataset.ready = "true";
  } catch (error) {
    say(error.message, true);
  }
});
