// Local file check: the SHA-256 of a file the reader chooses or drops, compared with the
// checksums the dataset lists. The file never leaves the browser.
"use strict";

(function () {
  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function start() {
    const panel = document.getElementById("filecheck");
    if (!panel || !(window.crypto && crypto.subtle)) return;
    const messages = JSON.parse((document.getElementById("verify-messages") || {}).textContent || "{}");
    const expected = new Set(panel.dataset.checksums.split(" ").filter(Boolean));
    const input = document.getElementById("filecheck-input");
    const result = document.getElementById("filecheck-result");
    panel.hidden = false;

    async function check(file) {
      if (!file) return;
      result.className = "";
      result.textContent = messages.file_hashing || "…";
      const digest = hex(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
      const match = expected.has(digest);
      result.className = match ? "ok" : "failed";
      result.dataset.outcome = match ? "match" : "mismatch";
      result.textContent = (match ? "✔ " + messages.file_match : "✘ " + messages.file_mismatch) +
        " (" + file.name + ": " + digest + ")";
    }
    input.addEventListener("change", () => check(input.files[0]));
    panel.addEventListener("dragover", (event) => { event.preventDefault(); panel.classList.add("dragging"); });
    panel.addEventListener("dragleave", () => panel.classList.remove("dragging"));
    panel.addEventListener("drop", (event) => {
      event.preventDefault();
      panel.classList.remove("dragging");
      check(event.dataTransfer.files[0]);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
