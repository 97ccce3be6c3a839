// TatumFlow studio: one page over the studio's HTTP API (server/studio.py).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, current: null, items: [], job: null, poll: null };

function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}
$("error-close").onclick = () => { $("error").hidden = true; };

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (e) {
    throw new Error(`the studio server did not answer (${e.message})`);
  }
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
  if (!response.ok) {
    throw new Error((body && body.error) || (body && body.detail && JSON.stringify(body.detail)) || `HTTP ${response.status}`);
  }
  return body;
}

async function guarded(fn) {
  try { await fn(); } catch (e) { showError(e.message); }
}

// ---------------------------------------------------------------- piano roll
function drawRoll(item) {
  const canvas = $("roll"), ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, r = item.roll;
  ctx.fillStyle = "#1b1e27"; ctx.fillRect(0, 0, w, h);
  if (!r.pitch.length) return;
  const end = Math.max(...r.offset, 1e-3);
  const lo = Math.min(...r.pitch) - 2, hi = Math.max(...r.pitch) + 2;
  const x = (t) => (t / end) * w, y = (p) => h - ((p - lo + 1) / (hi - lo + 1)) * h;
  ctx.fillStyle = "rgba(240, 200, 90, 0.18)";
  for (const [a, b] of item.pedals) ctx.fillRect(x(a), h - 6, Math.max(1, x(b) - x(a)), 6);
  const rowH = Math.max(2, h / (hi - lo + 1));
  for (let i = 0; i < r.pitch.length; i++) {
    const v = r.velocity[i] / 127;
    ctx.fillStyle = `hsl(${220 - 180 * v}, 70%, ${40 + 25 * v}%)`;
    ctx.fillRect(x(r.onset[i]), y(r.pitch[i]), Math.max(1.5, x(r.offset[i]) - x(r.onset[i])), rowH);
  }
  canvas.dataset.notes = String(r.pitch.length);
}

// ---------------------------------------------------------------- items
async function openItem(id) {
  const item = await api(`/api/items/${id}`);
  state.current = item;
  $("current").hidden = false;
  $("current-name").textContent = item.name;
  const made = item.kind === "generated" ? ` · made with ${JSON.stringify(item.params)}` : "";
  $("current-meta").textContent = `${item.kind} · ${item.seconds.toFixed(1)} s · ${item.notes} notes${made}`;
  drawRoll(item);
  $("player").src = `/api/items/${id}/audio.wav`;
  $("dl-midi").href = `/api/items/${id}/file.mid`;
  $("dl-wav").href = `/api/items/${id}/audio.wav`;
  $("rating").hidden = true;
  await refreshHistory();
}

async function refreshHistory() {
  state.items = await api("/api/items");
  const body = $("history").querySelector("tbody");
  body.innerHTML = "";
  for (const it of state.items) {
    const tr = document.createElement("tr");
    tr.dataset.id = it.id;
    const cells = [it.name, it.kind, it.seconds.toFixed(1), String(it.notes),
                   it.kind === "generated" ? JSON.stringify(it.params) : ""];
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
    const td = document.createElement("td"), b = document.createElement("button");
    b.textContent = "open"; b.className = "open-item";
    b.onclick = () => guarded(() => openItem(it.id));
    td.appendChild(b); tr.appendChild(td); body.appendChild(tr);
  }
  for (const sel of [$("style-item"), $("ref-items")]) {
    const keep = new Set([...sel.selectedOptions].map((o) => o.value));
    sel.innerHTML = sel.id === "style-item" ? '<option value="">(none)</option>' : "";
    for (const it of state.items) {
      const o = document.createElement("option");
      o.value = it.id; o.textContent = `${it.name} (${it.kind})`; o.selected = keep.has(it.id);
      sel.appendChild(o);
    }
  }
}

$("upload").onchange = () => guarded(async () => {
  const file = $("upload").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  const item = await api("/api/upload", { method: "POST", body: form });
  $("upload").value = "";
  await openItem(item.id);
});

$("example-btn").onclick = () => guarded(async () => {
  const item = await api(`/api/example/${encodeURIComponent($("example-select").value)}`, { method: "POST" });
  await openItem(item.id);
});

// ---------------------------------------------------------------- generation
function currentModel() { return state.info.models.find((m) => m.name === $("model").value); }

function showModelOptions() {
  const m = currentModel();
  $("mode").innerHTML = "";
  for (const mode of m ? m.modes : []) {
    const o = document.createElement("option"); o.value = o.textContent = mode; $("mode").appendChild(o);
  }
  for (const label of document.querySelectorAll("[data-param]")) {
    label.hidden = !(m && m.params.includes(label.dataset.param));
  }
}
$("model").onchange = showModelOptions;

function generationParams() {
  const m = currentModel(), params = { mode: $("mode").value };
  for (const label of document.querySelectorAll("[data-param]")) {
    const name = label.dataset.param;
    if (m.params.includes(name)) params[name] = $(`p-${name}`).value;
  }
  if ($("use-prompt").checked && state.current) params.prompt = state.current.id;
  if ($("style-item").value && m.params.includes("strength")) params.style = $("style-item").value;
  return params;
}

$("generate-btn").onclick = () => guarded(async () => {
  if (!state.info.models.length) throw new Error("no generator: start the studio with --checkpoint DIR or install a shipped model");
  const job = await api("/api/generate", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: $("model").value, params: generationParams() }),
  });
  state.job = job;
  $("job").hidden = false;
  $("generate-btn").disabled = true;
  renderJob(job);
  state.poll = setInterval(() => guarded(pollJob), 500);
});

function renderJob(job) {
  $("job-status").textContent = `${job.status}: ${job.stage} (${job.elapsed.toFixed(1)} s)` + (job.error ? ` — ${job.error}` : "");
  $("job-status").dataset.status = job.status;
  $("job-log").textContent = job.log.join("\n");
  const finished = !["queued", "running"].includes(job.status);
  $("job-progress").hidden = finished;
  $("cancel-btn").hidden = finished;
}

async function pollJob() {
  const job = await api(`/api/jobs/${state.job.id}`);
  state.job = job;
  renderJob(job);
  if (["queued", "running"].includes(job.status)) return;
  clearInterval(state.poll);
  $("generate-btn").disabled = false;
  if (job.status === "failed") showError(`generation failed: ${job.error}`);
  if (job.status === "done" && job.items.length) await openItem(job.items[0]);
  else await refreshHistory();
}

$("cancel-btn").onclick = () => guarded(async () => {
  renderJob(await api(`/api/jobs/${state.job.id}/cancel`, { method: "POST" }));
});

// ---------------------------------------------------------------- rating and comparing
$("assess-btn").onclick = () => guarded(async () => {
  const r = await api(`/api/assess/${state.current.id}`, { method: "POST" });
  $("rating").hidden = false;
  $("rating-of").textContent = `of ${state.current.name}`;
  $("warnings").innerHTML = "";
  for (const w of r.warnings) {
    const li = document.createElement("li"); li.textContent = `unlike the training data: ${w}`; $("warnings").appendChild(li);
  }
  const box = $("ratings");
  box.innerHTML = "";
  r.dimensions.forEach((d, i) => {
    const v = r.rating[i], s = r.spread[i];
    const row = document.createElement("div"); row.className = "bar";
    const pct = (x) => `${(100 * (Math.min(7, Math.max(1, x)) - 1) / 6).toFixed(1)}%`;
    row.innerHTML = `<span></span><div class="track"><div class="fill" style="width:${pct(v)}"></div>
      <div class="whisker" style="left:${pct(v - s)};width:calc(${pct(v + s)} - ${pct(v - s)})"></div></div><span></span>`;
    row.children[0].textContent = d;
    row.children[2].textContent = `${v.toFixed(2)} ± ${s.toFixed(2)}`;
    box.appendChild(row);
  });
});

$("compare-btn").onclick = () => guarded(async () => {
  if (!state.current) throw new Error("open a piece first");
  const ref = [...$("ref-items").selectedOptions].map((o) => o.value);
  const r = await api("/api/compare", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ gen: [state.current.id], ref }),
  });
  const fmt = (x) => (x === null || Number.isNaN(x) ? "n/a" : Number(x).toFixed(3));
  let text = `mean OA ${fmt(r.mean_oa)} (1 = indistinguishable), mean KL ${fmt(r.mean_kl)} bits over ${r.features} features`;
  if (r.style) text += `; P(${r.style.target}): this piece ${fmt(r.style.gen_mean)}, references ${fmt(r.style.ref_mean)}`;
  if (r.note) text += ` — ${r.note}`;
  $("compare-result").textContent = text;
});

// ---------------------------------------------------------------- start
guarded(async () => {
  const info = await api("/api/info");
  state.info = info;
  $("renderer-info").textContent = `audio: ${info.renderer}${info.soundfont ? " (" + info.soundfont + ")" : ""}`;
  for (const name of info.examples) {
    const o = document.createElement("option"); o.value = o.textContent = name; $("example-select").appendChild(o);
  }
  for (const m of info.models) {
    const o = document.createElement("option"); o.value = m.name; o.textContent = `${m.name} (${m.family})`;
    $("model").appendChild(o);
  }
  showModelOptions();
  await refreshHistory();
  document.body.dataset.ready = "1";
});
