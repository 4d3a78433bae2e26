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

  // RFC 9162 §2.1.4.2: check that a tree of oldSize with oldRoot is a prefix of the tree of
  // newSize with newRoot, given the consistency proof between them.
  async function checkConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
    if (!(0 < oldSize && oldSize <= newSize)) throw new Error("consistency sizes are out of order");
    if (oldSize === newSize) {
      if (proof.length !== 0) throw new Error("consistency proof is too long");
      if (!equal(oldRoot, newRoot)) throw new Error("two roots for one tree size");
      return;
    }
    let path = proof;
    if ((oldSize & (oldSize - 1)) === 0) path = [oldRoot, ...proof];  // a power of two
    if (path.length === 0) throw new Error("consistency proof is too short");
    let fn = oldSize - 1, sn = newSize - 1;
    while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    let fr = path[0], sr = path[0];
    for (const c of path.slice(1)) {
      if (sn === 0) throw new Error("consistency proof is too long");
      if (fn % 2 === 1 || fn === sn) {
        fr = await nodeHash(c, fr);
        sr = await nodeHash(c, sr);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        sr = await nodeHash(sr, c);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("consistency proof is too short");
    if (!equal(fr, oldRoot)) throw new Error("the consistency proof does not lead to the older root");
    if (!equal(sr, newRoot)) throw new Error("the consistency proof does not lead to the anchored root");
  }

  // C2SP vkey: <name>+<hex key id>+<base64(type || 32-byte Ed25519 public key)>, key id
  // SHA-256(name || 0x0A || type || key)[:4]. Type 0x01 is a signed-note (log) key, 0x04 a
  // tlog-cosignature (cosignature/v1, witness) key: one can never pass for the other.
  const NOTE_KEY = 0x01, COSIGNATURE_KEY = 0x04;
  async function parseKey(text, type) {
    // The name may not contain "+", the base64 key may: split at the first two only.
    const text2 = String(text || "").trim();
    const first = text2.indexOf("+"), second = text2.indexOf("+", first + 1);
    if (first <= 0 || second < 0) throw new Error("malformed verifier key");
    const name = text2.slice(0, first), idHex = text2.slice(first + 1, second);
    const keyB64 = text2.slice(second + 1);
    if (!/^[0-9a-f]{8}$/i.test(idHex)) throw new Error("malformed verifier key id");
    const raw = b64decode(keyB64);
    if (raw.length !== 33 || raw[0] !== type) {
      throw new Error(type === COSIGNATURE_KEY ? "witness key is not a cosignature/v1 key" : "verifier key is not Ed25519");
    }
    const keyId = (await sha256(concat(enc.encode(name), new Uint8Array([0x0a]), raw))).slice(0, 4);
    if (hex(keyId) !== idHex.toLowerCase()) throw new Error("verifier key id does not match the key");
    return { name, keyId, publicKey: raw.slice(1) };
  }
  const parseVerifierKey = (text) => parseKey(text, NOTE_KEY);
  const parseCosignerKey = (text) => parseKey(text, COSIGNATURE_KEY);

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

  async function ed25519Verify(publicKey, signature, message) {
    const cryptoKey = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return crypto.subtle.verify({ name: "Ed25519" }, cryptoKey, signature, message);
  }

  async function checkSignature(noteText, key) {
    const note = parseNote(noteText);
    const mine = note.signatures.filter((s) => s.name === key.name && s.blob.length === 68 &&
                                               equal(s.blob.slice(0, 4), key.keyId));
    if (mine.length === 0) throw new Error("no signature by " + key.name + " with key id " + hex(key.keyId));
    for (const s of mine) {
      if (await ed25519Verify(key.publicKey, s.blob.slice(4), enc.encode(note.body))) return note.body;
    }
    throw new Error("Ed25519 signature does not verify");
  }

  // C2SP tlog-cosignature, cosignature/v1: a signature line whose bytes are key id (4), the
  // 8-byte big-endian Unix time, then Ed25519 over "cosignature/v1\ntime <t>\n" + note body.
  // Returns the cosignature's time (seconds).
  async function checkCosignature(noteText, key) {
    const note = parseNote(noteText);
    const mine = note.signatures.filter((s) => s.name === key.name && equal(s.blob.slice(0, 4), key.keyId));
    if (mine.length === 0) throw new Error("no cosignature by " + key.name + " with key id " + hex(key.keyId));
    for (const s of mine) {
      if (s.blob.length !== 4 + 8 + 64) throw new Error("the cosignature has the wrong length");
      const time = new DataView(s.blob.buffer, s.blob.byteOffset + 4, 8).getBigUint64(0, false);
      const message = enc.encode("cosignature/v1\ntime " + time.toString() + "\n" + note.body);
      if (await ed25519Verify(key.publicKey, s.blob.slice(12), message)) return Number(time);
    }
    throw new Error("the cosignature does not verify");
  }

  function parseCheckpointBody(body) {
    const lines = body.split("\n");
    if (lines.length < 4) throw new Error("checkpoint body is too short");
    if (!/^[0-9]+$/.test(lines[1])) throw new Error("checkpoint size is not a number");
    return { origin: lines[0], size: Number(lines[1]), root: b64decode(lines[2]) };
  }

  // ---------------------------------------------------------------- the steps

  // Runs one check, reports pass (with its detail) or fail (with the reason); `failed` stays
  // true once any check failed. Every check runs, so each link gets its own verdict.
  function checker(report) {
    const state = { failed: false };
    state.step = async (id, fn) => {
      try {
        const detail = await fn();
        report(id, true, detail || "");
      } catch (err) {
        state.failed = true;
        report(id, false, err && err.message ? err.message : String(err));
      }
    };
    return state;
  }

  // The metadata hashes to what the bundle and its log entry say: SHA-256 of its RFC 8785 form
  // (entry v1), or of salt || that form (v2, government-only versions; the bundle carries the
  // salt for readers allowed to see them). `versions`: the entry versions this bundle may hold.
  async function checkMetadata(entry, claim, versions) {
    if (!entry) throw new Error("the log entry is not JSON");
    if (!versions.includes(entry.v)) throw new Error("unknown log entry version " + entry.v);
    if (claim.metadata == null) throw new Error("the bundle withholds the metadata (the publisher restricted it)");
    const salted = entry.v === 2;
    const saltHex = claim.salt;
    if (salted && typeof saltHex !== "string") throw new Error("a v2 entry commits to salted metadata, but the bundle has no salt");
    if (!salted && saltHex != null) throw new Error("a v1 entry commits to unsalted metadata, yet the bundle has a salt");
    if (salted && !/^[0-9a-f]{64}$/.test(saltHex)) throw new Error("the metadata salt is not 32 bytes of hex");
    const salt = salted ? hexdecode(saltHex) : new Uint8Array(0);
    const digest = hex(await sha256(concat(salt, enc.encode(canonicalize(claim.metadata)))));
    if (digest !== claim.sha256) throw new Error("SHA-256 of the metadata is " + digest + ", the bundle says " + claim.sha256);
    if (entry.metadata_sha256 !== digest) throw new Error("the log entry commits to " + entry.metadata_sha256 + ", the metadata hashes to " + digest);
    if (entry.dataset !== claim.dataset || entry.version !== claim.version) throw new Error("the log entry is for another dataset or version");
    return digest + (salted ? " (v2, salted)" : "");
  }

  // A checkpoint of `origin` signed by the key `keyText`: returns the key and the parsed body.
  async function signedCheckpoint(noteText, keyText, origin) {
    const key = await parseVerifierKey(keyText);
    const body = parseCheckpointBody(await checkSignature(noteText, key));
    if (body.origin !== origin) throw new Error("checkpoint origin " + body.origin + " is not " + origin);
    return { key, body };
  }

  // `leaf` at `index` is in the tree a verified checkpoint `body` signs, of the bundle's size.
  async function checkIncluded(body, treeSize, index, leaf, pathB64) {
    if (!body) throw new Error("no verified checkpoint to check against");
    if (body.size !== treeSize) throw new Error("checkpoint size " + body.size + " is not the bundle's tree size " + treeSize);
    const root = await rootFromInclusion(index, body.size, leaf, (pathB64 || []).map(b64decode));
    if (!equal(root, body.root)) throw new Error("the path leads to a different root than the signed one");
  }

  async function verifyBundle(bundle, keyText, report) {
    const checks = checker(report), step = checks.step;
    const entryBytes = enc.encode(bundle.entry);
    let entry = null;
    try { entry = JSON.parse(bundle.entry); } catch (err) { entry = null; }

    await step("metadata", () => checkMetadata(entry, {
      metadata: bundle.metadata, sha256: bundle.metadata_sha256, salt: bundle.metadata_salt,
      dataset: bundle.dataset, version: bundle.version }, [1, 2]));
    let leaf = null;
    await step("leaf", async () => {
      leaf = await leafHash(entryBytes);
      if (!equal(leaf, b64decode(bundle.leaf_hash))) throw new Error("SHA-256(0x00 || entry) differs from the bundle's leaf hash");
      return "#" + bundle.index + " " + hex(leaf).slice(0, 16) + "…";
    });
    let body = null;
    await step("signature", async () => {
      const signed = await signedCheckpoint(bundle.checkpoint, keyText, bundle.origin);
      body = signed.body;
      return signed.key.name + " (" + hex(signed.key.keyId) + ")";
    });
    await step("inclusion", async () => {
      if (!leaf) leaf = await leafHash(entryBytes);
      await checkIncluded(body, bundle.tree_size, bundle.index, leaf, bundle.inclusion_path);
      return (messages().tree_size || "tree size") + " " + body.size;
    });
    return !checks.failed;
  }

  // A federated entry (ndr-federated-proof/v1, served by a hub for a member's entry): every
  // link of the chain on its own. The member's key comes from the hub's trust configuration
  // (the bundle names it; the page shows it next to a link to the member's own /log/key), the
  // witness key from the bundle, the hub's key from the hub's /log/key; every hash is
  // recomputed here.
  const FEDERATED_STEPS = ["metadata", "member_signature", "member_inclusion", "cosignature",
                           "hub_entry", "hub_signature", "hub_inclusion", "anchors"];

  async function verifyFederated(bundle, hubKeyText, report) {
    const checks = checker(report), step = checks.step;
    const member = bundle.member || {}, hub = bundle.hub || {};
    const entryBytes = enc.encode(String(member.entry || ""));
    let entry = null;
    try { entry = JSON.parse(member.entry); } catch (err) { entry = null; }

    await step("metadata", () => checkMetadata(entry, {
      metadata: member.metadata, sha256: member.metadata_sha256, salt: null,
      dataset: member.dataset, version: bundle.version }, [1]));
    let memberBody = null;
    await step("member_signature", async () => {
      const signed = await signedCheckpoint(member.checkpoint, member.verifier_key, member.origin);
      memberBody = signed.body;
      return signed.key.name + " (" + hex(signed.key.keyId) + "), " + (messages().tree_size || "tree size") + " " + memberBody.size;
    });
    await step("member_inclusion", async () => {
      const leaf = await leafHash(entryBytes);
      await checkIncluded(memberBody, member.tree_size, member.index, leaf, member.inclusion_path);
      return "#" + member.index + " " + hex(leaf).slice(0, 16) + "…";
    });
    await step("cosignature", async () => {
      const key = await parseCosignerKey(bundle.witness_key);
      const time = await checkCosignature(member.checkpoint, key);
      return key.name + " (" + hex(key.keyId) + ") " + new Date(time * 1000).toISOString().replace(".000Z", "Z");
    });
    let hubLeaf = null;
    await step("hub_entry", async () => {
      const bytes = enc.encode(String(hub.entry || ""));
      let logged;
      try { logged = JSON.parse(hub.entry); } catch (err) { throw new Error("the hub's log entry is not JSON"); }
      if (canonicalize(logged) !== hub.entry) throw new Error("the hub's log entry is not canonical JSON");
      if (logged.v !== 1 || logged.type !== "member.checkpoint") throw new Error("the hub's log entry is not a member.checkpoint");
      if (!memberBody) throw new Error("no verified checkpoint to check against");
      if (logged.checkpoint !== member.checkpoint) throw new Error("the hub logged another member checkpoint");
      if (logged.origin !== memberBody.origin || logged.size !== memberBody.size ||
          !equal(b64decode(String(logged.root)), memberBody.root)) throw new Error("the hub logged another member checkpoint");
      hubLeaf = await leafHash(bytes);
      return "member.checkpoint " + logged.origin + " " + (messages().tree_size || "tree size") + " " + logged.size + ", #" + hub.index + " " + hex(hubLeaf).slice(0, 16) + "…";
    });
    let hubBody = null;
    await step("hub_signature", async () => {
      const signed = await signedCheckpoint(hub.checkpoint, hubKeyText, hub.origin);
      hubBody = signed.body;
      return signed.key.name + " (" + hex(signed.key.keyId) + "), " + (messages().tree_size || "tree size") + " " + hubBody.size;
    });
    await step("hub_inclusion", async () => {
      if (!hubLeaf) hubLeaf = await leafHash(enc.encode(String(hub.entry || "")));
      await checkIncluded(hubBody, hub.tree_size, hub.index, hubLeaf, hub.inclusion_path);
      return "#" + hub.index + ", " + (messages().tree_size || "tree size") + " " + hubBody.size;
    });
    await step("anchors", async () => {
      if (!hubBody) throw new Error("no verified checkpoint to check against");
      const anchors = Array.isArray(hub.anchors) ? hub.anchors : [];
      if (anchors.length === 0) return messages().not_anchored || "Not yet anchored.";
      for (const a of anchors) {
        const size = Number(a.size), root = b64decode(String(a.root));
        const proof = ((a.consistency || {}).proof || []).map(b64decode);
        await checkConsistency(hubBody.size, size, hubBody.root, root, proof);
      }
      return describeAnchors(anchors);
    });
    return !checks.failed;
  }

  function describeAnchors(anchors) {
    const t = messages();
    return t.anchored + " " + anchors.map((a) => ((t.backends || {})[a.backend] || a.backend || "") + " " + (a.chain_id || "") + " " + t.transaction + " " + (a.tx_id || a.tx_hash || "") + (a.block_number != null ? " " + t.block + " " + a.block_number : "") + " (" + (t.tree_size || "tree size") + " " + a.size + ")").join("; ");
  }

  // ---------------------------------------------------------------- the page

  // The reasons above are written in English, once, for the code; the page's language table
  // ("details", from the template's translations) rewords them for the reader, phrase by phrase.
  function translated(detail, t) {
    let text = String(detail || "");
    for (const [english, local] of t.details || []) text = text.split(english).join(local);
    return text;
  }

  function messages() {
    const node = document.getElementById("verify-messages");
    return node ? JSON.parse(node.textContent) : {};
  }

  async function run(button, panel) {
    const federated = button.dataset.federated === "1";
    const t = messages();
    if (federated) {  // the same two steps, worded for a hub's copy of a member's entry
      t.fetch = t.fetch_federated || t.fetch;
      t.metadata = t.metadata_federated || t.metadata;
    }
    const list = document.getElementById("verify-steps");
    const summary = document.getElementById("verify-summary");
    document.getElementById("verify-version").textContent = "v" + button.dataset.version;
    list.replaceChildren();
    summary.textContent = t.running || "…";
    summary.className = "";
    panel.hidden = false;
    // On a phone the panel sits below every version's card: bring it to the reader.
    if (panel.scrollIntoView) panel.scrollIntoView({ block: "start" });
    const order = ["fetch", ...(federated ? FEDERATED_STEPS : ["metadata", "leaf", "signature", "inclusion"])];
    const items = {};
    for (const id of order) {
      const li = document.createElement("li");
      li.dataset.step = id;
      li.dataset.result = "pending";
      li.textContent = t[id] + (t.colon || ": ") + (t.running || "…");
      list.appendChild(li);
      items[id] = li;
    }
    function report(id, passed, detail) {
      const li = items[id];
      li.dataset.result = passed ? "ok" : "failed";
      li.className = passed ? "ok" : "failed";
      li.textContent = (passed ? "✔ " : "✘ ") + t[id] + (t.colon || ": ") + (passed ? t.ok : t.failed) + (detail ? " — " + translated(detail, t) : "");
    }
    let bundle, keyText;
    try {
      const [bundleResponse, keyResponse] = await Promise.all([
        fetch(button.dataset.proofUrl, { headers: { Accept: "application/json" } }),
        fetch(panel.dataset.keyUrl)]);
      if (!bundleResponse.ok) throw new Error(t.http_bundle + " " + bundleResponse.status);
      if (!keyResponse.ok) throw new Error(t.http_key + " " + keyResponse.status);
      bundle = await bundleResponse.json();
      keyText = await keyResponse.text();
      const expected = federated ? "ndr-federated-proof/v1" : "ndr-proof-bundle/v1";
      if (!bundle || bundle.format !== expected) throw new Error(t.bad_format + " " + (bundle && bundle.format));
      report("fetch", true, "");
    } catch (err) {
      report("fetch", false, err.message);
      for (const id of order.slice(1)) report(id, false, "");
      summary.textContent = t.some_failed;
      summary.className = "failed";
      panel.dataset.outcome = "failed";
      return;
    }
    const ok = federated ? await verifyFederated(bundle, keyText, report)
      : await verifyBundle(bundle, keyText, report);
    summary.textContent = ok ? (federated ? t.all_ok_federated : t.all_ok) : t.some_failed;
    summary.className = ok ? "ok" : "failed";
    panel.dataset.outcome = ok ? "ok" : "failed";
    if (federated) return;  // its anchors were a step of their own
    const anchors = Array.isArray(bundle.anchors) ? bundle.anchors : [];
    const note = document.createElement("li");
    note.dataset.step = "anchor";
    note.textContent = anchors.length ? describeAnchors(anchors) : t.not_anchored;
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

  window.ndrVerify = { canonicalize, parseVerifierKey, parseCosignerKey, rootFromInclusion,
                       checkConsistency, checkCosignature, verifyBundle, verifyFederated };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
