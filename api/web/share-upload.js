// An upload link's page (/s/{token}): plain JavaScript, no build step. Each chosen file is one
// intent (POST /s/{token}/upload, the link's unlock cookie sent along), one presigned PUT
// straight to storage, then complete. Names are shown with textContent, never as HTML.
"use strict";

(() => {
  const form = document.querySelector("#share-upload");
  const input = document.querySelector("#share-file");
  const sent = document.querySelector("#share-sent");
  const box = document.querySelector("#error");
  const link = form.dataset.link;

  async function failure(response) {
    try {
      const body = await response.json();
      return body.detail || body.error || `HTTP ${response.status}`;
    } catch {
      return `HTTP ${response.status}`;
    }
  }

  async function json(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error(await failure(response));
    return response.json();
  }

  async function send(file, line) {
    // One PUT is enough for this page: a file above S3's 5 GiB single PUT is refused (422).
    const intent = await json(`${link}/upload`, {
      name: file.name,
      size: file.size,
      content_type: file.type || undefined,
      multipart: false,
    });
    line.textContent = `${intent.path}: sending…`;
    const headers = { ...intent.upload.headers };
    delete headers["Content-Length"]; // the browser sets it
    const put = await fetch(intent.upload.url, { method: "PUT", headers, body: file });
    if (!put.ok) throw new Error(`storage answered ${put.status}`);
    let state = await json(`${link}/uploads/${intent.upload.id}/complete`, undefined);
    for (let tries = 0; state.status === "pending" && tries < 10; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      state = await json(`${link}/uploads/${intent.upload.id}/complete`, undefined);
    }
    return `${intent.path}: ${state.status === "completed" ? "sent" : state.status}`;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    box.hidden = true;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      for (const file of input.files) {
        const line = document.createElement("li");
        line.textContent = `${file.name}: asking…`;
        sent.append(line);
        try {
          line.textContent = await send(file, line);
        } catch (error) {
          line.textContent = `${file.name}: failed`;
          box.textContent = error.message;
          box.hidden = false;
        }
      }
      form.reset();
    } finally {
      button.disabled = false;
    }
  });
})();
