// In-browser verification of one dataset version against the registry's signed log.
// Uses only WebCrypto (SHA-256, Ed25519); trusts nothing the server computed: every hash is
// recomputed here from the bundle's raw material and the checkpoint signature is checked
// with the log's published verifier key.
"use strict";

(function () {
  const enc = new TextEncoder();

  function b64decode(text) {
    const bin = atob(text.trim());
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function hexdecode(text) {
    const out = new Uint8Array(text.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
    return out;
  }
  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  function equal(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }
  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  // RFC 8785 (JCS): keys sorted by UTF-16 code units, ECMAScript serialisation of values.
  function canonicalize(value) {
    if (value === null || typeof value !== "object") {
      if (typeof value === "number" && !Number.isFinite(value)) throw new Error("non-finite number");
      return JSON.stringify(value);
    }
    if (Array.isArray(value)) return "[" + value.map(canonicalize).join(",") + "]";
    const keys = Object.keys(value).sort();
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalize(value[k])).join(",") + "}";
  }

  const leafHash = (entryBytes) => sha256(concat(new Uint8Array([0]), entryBytes));
  const nodeHash = (left, right) => sha256(concat(new Uint8Array([1]), left, right));

  // RFC 9162 §2.1.3.2: the root a leaf and its inclusion path imply.
  async function rootFromInclusion(index, size, leaf, path) {
    if (!(index < size)) throw new Error("index " + index + " is not below tree size " + size);
    let fn = index, sn = size - 1, r = leaf;
    for (const p of path) {
      if (sn === 0) throw new Error("inclusion path is too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("inclusion path is too short");
    return r;
  }

  // C2SP vkey: <name>+<hex key id>+<base64(0x01 || 32-byte Ed25519 public key)>
  async function parseVerifierKey(text) {
    // The name may not contain "+", the base64 key may: split at the first two only.
    const text2 = text.trim();
    const first = text2.indexOf("+"), second = text2.indexOf("+", first + 1);
    if (first <= 0 || second < 0) throw new Error("malformed verifier key");
    const name = text2.slice(0, first), idHex = text2.slice(first + 1, second);
    const keyB64 = text2.slice(second + 1);
    if (!/^[0-9a-f]{8}$/i.test(idHex)) throw new Error("malformed verifier key id");
    const raw = b64decode(keyB64);
    if (raw.length !== 33 || raw[0] !== 1) throw new Error("verifier key is not Ed25519");
    const keyId = (await sha256(concat(enc.encode(name), new Uint8Array([0x0a]), raw))).slice(0, 4);
    if (hex(keyId) !== idHex.toLowerCase()) throw new Error("verifier key id does not match the key");
    return { name, keyId, publicKey: raw.slice(1) };
  }

  // C2SP signed note: body up to the blank line, then "— <name> <base64(keyid || sig)>" lines.
  function parseNote(text) {
    const split = text.indexOf("\n\n");
    if (split < 0) throw new Error("signed note has no signature block");
    const body = text.slice(0, split + 1);
    const signatures = text.slice(split + 2).split("\n").filter((l) => l.length > 0).map((line) => {
      if (!line.startsWith("\u2014 ")) throw new Error("malformed signature line");
      const rest = line.slice(2);
      const space = rest.lastIndexOf(" ");
      return { name: rest.slice(0, space), blob: b64decode(rest.slice(space + 1)) };
    });
    return { body, signatures };
  }

  async function checkSignature(noteText, key) {
    const note = parseNote(noteText);
    const mine = note.signatures.filter((s) => s.name === key.name && s.blob.length === 68 &&
                                               equal(s.blob.slice(0, 4), key.keyId));
    if (mine.length === 0) throw new Error("no signature by " + key.name + " with key id " + hex(key.keyId));
    const cryptoKey = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
    for (const s of mine) {
      if (await crypto.subtle.verify({ name: "Ed25519" }, cryptoKey, s.blob.slice(4), enc.encode(note.body))) {
        return note.body;
      }
    }
    throw new Error("Ed25519 signature does not verify");
  }

  function parseCheckpointBody(body) {
    const lines = body.split("\n");
    if (lines.length < 4) throw new Error("checkpoint body is too short");
    if (!/^[0-9]+$/.test(lines[1])) throw new Error("checkpoint size is not a number");
    return { origin: lines[0], size: Number(lines[1]), root: b64decode(lines[2]) };
  }

  // ---------------------------------------------------------------- the steps

  async function verifyBundle(bundle, keyText, report) {
    let ok = true;
    async function step(id, fn) {
      try {
        const detail = await fn();
        report(id, true, detail || "");
      } catch (err) {
        ok = false;
        report(id, false, err && err.message ? err.message : String(err));
      }
    }
    const entryBytes = enc.encode(bundle.entry);
    let entry = null;
    try { entry = JSON.parse(bundle.entry); } catch (err) { entry = null; }

    await step("metadata", async () => {
      if (!entry) throw new Error("the log entry is not JSON");
      // Entry v1 commits to SHA-256(metadata); v2 (government-only) to SHA-256(salt || metadata)
      // with the per-version salt the bundle carries for readers allowed to see it.
      if (entry.v !== 1 && entry.v !== 2) throw new Error("unknown log entry version " + entry.v);
      const salted = entry.v === 2;
      const saltHex = bundle.metadata_salt;
      if (salted && typeof saltHex !== "string") throw new Error("a v2 entry commits to salted metadata, but the bundle has no salt");
      if (!salted && saltHex != null) throw new Error("a v1 entry commits to unsalted metadata, yet the bundle has a salt");
      if (salted && !/^[0-9a-f]{64}$/.test(saltHex)) throw new Error("the metadata salt is not 32 bytes of hex");
      const salt = salted ? hexdecode(saltHex) : new Uint8Array(0);
      const digest = hex(await sha256(concat(salt, enc.encode(canonicalize(bundle.metadata)))));
      if (digest !== bundle.metadata_sha256) throw new Error("SHA-256 of the metadata is " + digest + ", the bundle says " + bundle.metadata_sha256);
      if (entry.metadata_sha256 !== digest) throw new Error("the log entry commits to " + entry.metadata_sha256 + ", the metadata hashes to " + digest);
      if (entry.dataset !== bundle.dataset || entry.version !== bundle.version) throw new Error("the log entry is for another dataset or version");
      return digest + (salted ? " (v2, salted)" : "");
    });
    let leaf = null;
    await step("leaf", async () => {
      leaf = await leafHash(entryBytes);
      if (!equal(leaf, b64decode(bundle.leaf_hash))) throw new Error("SHA-256(0x00 || entry) differs from the bundle's leaf hash");
      return "#" + bundle.index + " " + hex(leaf).slice(0, 16) + "…";
    });
    let key = null, body = null;
    await step("signature", async () => {
      key = await parseVerifierKey(keyText);
      body = parseCheckpointBody(await checkSignature(bundle.checkpoint, key));
      if (body.origin !== bundle.origin) throw new Error("checkpoint origin " + body.origin + " is not " + bundle.origin);
      return key.name + " (" + hex(key.keyId) + ")";
    });
    await step("inclusion", async () => {
      if (!leaf) leaf = await leafHash(entryBytes);
      if (!body) throw new Error("no verified checkpoint to check against");
      if (body.size !== bundle.tree_size) throw new Error("checkpoint size " + body.size + " is not the bundle's tree size " + bundle.tree_size);
      const root = await rootFromInclusion(bundle.index, bundle.tree_size, leaf, bundle.inclusion_path.map(b64decode));
      if (!equal(root, body.root)) throw new Error("the path leads to a different root than the signed one");
      return "tree size " + body.size;
    });
    return ok;
  }

  // ---------------------------------------------------------------- the page

  function messages() {
    const node = document.getElementById("verify-messages");
    return node ? JSON.parse(node.textContent) : {};
  }

  async function run(button, panel) {
    const t = messages();
    const list = document.getElementById("verify-steps");
    const summary = document.getElementById("verify-summary");
    document.getElementById("verify-version").textContent = "v" + button.dataset.version;
    list.replaceChildren();
    summary.textContent = t.running || "…";
    summary.className = "";
    panel.hidden = false;
    const order = ["fetch", "metadata", "leaf", "signature", "inclusion"];
    const items = {};
    for (const id of order) {
      const li = document.createElement("li");
      li.dataset.step = id;
      li.dataset.result = "pending";
      li.textContent = t[id] + ": " + (t.running || "…");
      list.appendChild(li);
      items[id] = li;
    }
    function report(id, passed, detail) {
      const li = items[id];
      li.dataset.result = passed ? "ok" : "failed";
      li.className = passed ? "ok" : "failed";
      li.textContent = (passed ? "✔ " : "✘ ") + t[id] + ": " + (passed ? t.ok : t.failed) + (detail ? " — " + detail : "");
    }
    let bundle, keyText;
    try {
      const [bundleResponse, keyResponse] = await Promise.all([
        fetch(button.dataset.proofUrl, { headers: { Accept: "application/json" } }),
        fetch(panel.dataset.keyUrl)]);
      if (!bundleResponse.ok) throw new Error("proof bundle: HTTP " + bundleResponse.status);
      if (!keyResponse.ok) throw new Error("verifier key: HTTP " + keyResponse.status);
      bundle = await bundleResponse.json();
      keyText = await keyResponse.text();
      if (bundle.format !== "ndr-proof-bundle/v1") throw new Error("unknown bundle format " + bundle.format);
      report("fetch", true, "");
    } catch (err) {
      report("fetch", false, err.message);
      for (const id of order.slice(1)) report(id, false, "");
      summary.textContent = t.some_failed;
      summary.className = "failed";
      return;
    }
    const ok = await verifyBundle(bundle, keyText, report);
    summary.textContent = ok ? t.all_ok : t.some_failed;
    summary.className = ok ? "ok" : "failed";
    panel.dataset.outcome = ok ? "ok" : "failed";
    const anchors = Array.isArray(bundle.anchors) ? bundle.anchors : [];
    const note = document.createElement("li");
    note.dataset.step = "anchor";
    note.textContent = anchors.length
      ? t.anchored + " " + anchors.map((a) => (a.backend || "") + " " + (a.chain_id || "") + " tx " + (a.tx_id || a.tx_hash || "") + (a.block_number != null ? " block " + a.block_number : "")).join("; ")
      : t.not_anchored;
    list.appendChild(note);
  }

  function start() {
    const panel = document.getElementById("verify-panel");
    if (!panel || !(window.crypto && crypto.subtle)) return;
    for (const button of document.querySelectorAll("button.verify-button")) {
      button.hidden = false;
      button.addEventListener("click", () => run(button, panel));
    }
  }

  window.ndrVerify = { canonicalize, parseVerifierKey, rootFromInclusion, verifyBundle };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
