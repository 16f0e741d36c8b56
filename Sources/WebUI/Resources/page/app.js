// The ea-weights web UI: plain JavaScript against the JSON API (README, "serve"). No build step, no CDN.
"use strict";
const $ = (id) => document.getElementById(id);
let models = null;

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = { error: text }; }
  if (!response.ok) throw new Error((body && body.error) || response.statusText);
  return body;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value; else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function bytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"]; let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
}
function clock(seconds) {
  const s = Math.round(seconds); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

// ---- tabs
for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => showView(tab.dataset.view));
}
function showView(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === name);
  for (const view of document.querySelectorAll(".view")) view.classList.toggle("active", view.id === "view-" + name);
}

// ---- models and the form
function fillSelect(select, choices, { none = false, keep = true } = {}) {
  const previous = select.value;
  select.replaceChildren();
  if (none) select.append(el("option", { value: "" }, "none"));
  for (const c of choices) select.append(el("option", { value: c.name }, c.name));
  if (keep && [...select.options].some((o) => o.value === previous)) select.value = previous;
}

async function loadModels() {
  models = await api("/api/models");
  fillSelect($("transformer"), models.transformers);
  fillSelect($("motionModule"), models.motionModules, { none: true });
  if (!$("motionModule").dataset.touched && models.motionModules.length) $("motionModule").value = models.motionModules[0].name;
  fillSelect($("personalized"), models.personalized, { none: true });
  fillSelect($("lora"), models.loras, { none: true });
  fillSelect($("sampler"), models.samplers.map((name) => ({ name })));
  const b = models.bounds;
  for (const field of ["steps", "width", "height", "frames", "guidance", "seed", "fps"]) {
    $(field).min = b[field][0]; $(field).max = b[field][1];
  }
  applySizeRule();
  renderModels();
}

function applySizeRule() {
  const rule = models && models.sizes[$("transformer").value];
  for (const field of ["width", "height"]) {
    // The spinner steps through multiples of the model's size rule (a step counts from min).
    $(field).step = rule ? rule.multiple : 8;
    $(field).min = rule ? Math.max(rule.multiple, models.bounds[field][0]) : models.bounds[field][0];
    if (rule && !$(field).value) $(field).value = rule.defaultSize;
  }
}

function setForm(settings) {
  for (const [key, value] of Object.entries(settings)) {
    const input = $(key);
    if (!input || value === null || value === undefined) continue;
    if (input.tagName === "SELECT" && ![...input.options].some((o) => o.value === String(value))) {
      showFormError(key + ": '" + value + "' is no longer in the list");
      continue;
    }
    input.value = value;
  }
  $("loraWeightValue").value = Number($("loraWeight").value).toFixed(2);
}

function readForm() {
  const numbers = ["steps", "width", "height", "frames", "fps", "seed"];
  const settings = {};
  for (const key of ["transformer", "motionModule", "personalized", "lora", "prompt", "negativePrompt", "sampler"]) settings[key] = $(key).value;
  for (const key of numbers) { if ($(key).value !== "") settings[key] = Number($(key).value); }
  settings.guidance = Number($("guidance").value);
  settings.loraWeight = Number($("loraWeight").value);
  return settings;
}

function showFormError(message) {
  $("formError").textContent = message;
  for (const input of document.querySelectorAll("#form .invalid")) input.classList.remove("invalid");
  const field = message.split(":")[0];
  if ($(field)) $(field).classList.add("invalid");
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showFormError("");
  try {
    const job = await api("/api/generate", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(readForm()) });
    followJob(job);
  } catch (error) { showFormError(error.message); }
});
$("dice").addEventListener("click", () => { $("seed").value = 1 + Math.floor(Math.random() * 1e8); });
$("loraWeight").addEventListener("input", () => { $("loraWeightValue").value = Number($("loraWeight").value).toFixed(2); });
$("transformer").addEventListener("change", () => { $("width").value = ""; $("height").value = ""; applySizeRule(); });
$("motionModule").addEventListener("change", () => { $("motionModule").dataset.touched = "1"; });
for (const button of document.querySelectorAll(".refresh")) button.addEventListener("click", () => loadModels().catch((e) => showFormError(e.message)));

// ---- jobs: one card per job, fed by its event stream
const cards = new Map();
function jobCard(status) {
  let card = cards.get(status.id);
  if (!card) {
    card = el("div", { class: "job", id: "job-" + status.id });
    card.head = el("div", { class: "head" });
    card.text = el("span");
    card.cancel = el("button", { type: "button", class: "cancel", onclick: () => api("/api/jobs/" + status.id, { method: "DELETE" }).catch(() => {}) }, "Cancel");
    card.head.append(card.text, card.cancel);
    card.bar = el("div"); const bar = el("div", { class: "bar" }); bar.append(card.bar);
    card.append(card.head, bar);
    $("jobs").prepend(card);
    cards.set(status.id, card);
  }
  return card;
}

function describe(status) {
  const what = status.kind === "verify" ? "Verify" : "Generate";
  if (status.state === "queued") return what + ": queued (" + (status.position === 1 ? "next" : "position " + status.position) + ")";
  if (status.state === "cancelled") return what + ": cancelled";
  if (status.state === "failed") return what + ": failed: " + status.error;
  if (status.state === "done") return what + ": done" + (status.run ? " (" + status.run + ")" : "");
  let line = what + ": " + (status.stage || "starting");
  if (status.total) {
    const done = status.unit === "byte" ? bytes(status.done) + " / " + bytes(status.total) : status.done + "/" + status.total;
    line += " " + done;
  }
  if (status.secondsPerUnit && status.unit !== "byte") line += " · " + status.secondsPerUnit.toFixed(2) + " s/" + status.unit;
  if (status.secondsPerUnit && status.unit === "byte") line += " · " + bytes(1 / status.secondsPerUnit) + "/s";
  if (status.etaSeconds !== undefined && status.etaSeconds !== null) line += " · ETA " + clock(status.etaSeconds);
  return line;
}

function showStatus(status) {
  const card = jobCard(status);
  card.text.textContent = describe(status);
  card.text.className = "state-" + status.state;
  card.dataset.state = status.state;
  card.bar.style.width = status.state === "done" ? "100%" : (status.total ? (100 * status.done / status.total).toFixed(1) + "%" : "0");
  card.cancel.disabled = status.state === "done" || status.state === "failed" || status.state === "cancelled";
}

function followJob(job, onDone) {
  showStatus(job);
  const events = new EventSource("/api/jobs/" + job.id + "/events");
  events.addEventListener("status", (message) => {
    const status = JSON.parse(message.data);
    showStatus(status);
    if (status.kind === "verify") showVerifyStatus(status);
    if (["done", "failed", "cancelled"].includes(status.state)) {
      events.close();
      if (status.kind === "generate" && status.state === "done") { loadRuns().then(() => playRun(status.run)); }
      if (onDone) onDone(status);
    }
  });
  events.onerror = () => { events.close(); api("/api/jobs/" + job.id).then(showStatus).catch(() => {}); };
}

// ---- runs
let runs = [];
async function loadRuns() {
  const listing = await api("/api/runs");
  runs = listing.runs;
  const list = $("history");
  list.replaceChildren();
  for (const run of runs) {
    const s = run.settings;
    const box = el("input", { type: "checkbox", value: run.id, onchange: updateCompareButton });
    const thumb = el("img", { src: "/api/runs/" + run.id + "/frames/0", alt: "first frame", loading: "lazy" });
    const info = el("div", {},
      el("div", { class: "prompt" }, s.prompt),
      el("div", { class: "meta" }, run.id + " · " + s.transformer + (s.personalized ? " + " + s.personalized : "") + (s.lora ? " + " + s.lora + " × " + s.loraWeight : "")
        + " · " + s.sampler + " " + s.steps + " steps · " + run.width + "×" + run.height + " × " + run.frames + " frames · CFG " + s.guidance + " · seed " + s.seed
        + " · " + run.seconds.toFixed(1) + " s"),
      el("div", { class: "row" },
        el("button", { type: "button", class: "use", onclick: () => { setForm(s); showView("generate"); window.scrollTo(0, 0); } }, "Use these settings"),
        el("button", { type: "button", onclick: () => playRun(run.id) }, "Play"),
        el("a", { href: "/samples/" + run.video, download: run.video }, "mp4")));
    list.append(el("li", { "data-run": run.id }, box, thumb, info));
  }
  for (const select of [$("compareA"), $("compareB")]) {
    const previous = select.value;
    select.replaceChildren(...runs.map((r) => el("option", { value: r.id }, r.id + " — " + r.settings.prompt.slice(0, 40))));
    if (runs.some((r) => r.id === previous)) select.value = previous;
  }
  if (runs.length > 1 && $("compareA").value === $("compareB").value) $("compareB").value = runs[1].id;
  updateCompareButton();
}

function playRun(id) {
  const run = runs.find((r) => r.id === id);
  if (!run) return;
  const video = $("video");
  video.src = "/samples/" + run.video;
  video.dataset.run = id;
  $("videoCaption").textContent = run.id + ": " + run.frames + " frames, " + run.width + "×" + run.height + " at " + run.fps + " fps";
  video.play().catch(() => {});
}

function selectedRuns() { return [...document.querySelectorAll("#history input:checked")].map((b) => b.value); }
function updateCompareButton() { $("compareSelected").disabled = selectedRuns().length !== 2; }
$("compareSelected").addEventListener("click", () => {
  const [a, b] = selectedRuns();
  $("compareA").value = b; $("compareB").value = a;   // older as A
  showView("compare");
  compare();
});

// ---- compare
async function compare() {
  $("compareError").textContent = "";
  const a = $("compareA").value, b = $("compareB").value;
  const body = $("compareTable").tBodies[0];
  body.replaceChildren();
  try {
    const result = await api("/api/compare?a=" + encodeURIComponent(a) + "&b=" + encodeURIComponent(b));
    const worst = Math.max(...result.frames.map((f) => f.maxAbs));
    const psnrs = result.frames.map((f) => f.psnr).filter((p) => p !== null && p !== undefined);
    $("compareSummary").textContent = result.frames.length + " frames of " + result.width + "×" + result.height
      + " · largest difference " + worst.toExponential(3)
      + (psnrs.length ? " · lowest PSNR " + Math.min(...psnrs).toFixed(2) + " dB" : " · identical")
      + " · heat map: black = 0, white = " + result.scale.toExponential(3);
    for (const f of result.frames) {
      const q = "a=" + encodeURIComponent(a) + "&b=" + encodeURIComponent(b) + "&frame=" + f.index;
      body.append(el("tr", {},
        el("td", {}, f.index),
        el("td", {}, el("img", { src: "/api/runs/" + a + "/frames/" + f.index, alt: "A frame " + f.index })),
        el("td", {}, el("img", { src: "/api/runs/" + b + "/frames/" + f.index, alt: "B frame " + f.index })),
        el("td", {}, el("img", { class: "heat", src: "/api/compare/heatmap?" + q, alt: "difference " + f.index })),
        el("td", {}, f.maxAbs.toExponential(3)),
        el("td", {}, f.psnr === null || f.psnr === undefined ? "∞ (identical)" : f.psnr.toFixed(2))));
    }
  } catch (error) { $("compareError").textContent = error.message; $("compareSummary").textContent = ""; }
}
$("compareRun").addEventListener("click", compare);

// ---- models view
function renderModels() {
  $("modelsRoot").textContent = (models.source === "bundled" ? "bundled set: " : "") + models.root;
  const body = $("choices").tBodies[0];
  body.replaceChildren();
  for (const [list, choices] of [["transformer", models.transformers], ["motion module", models.motionModules], ["personalized", models.personalized], ["LoRA", models.loras]]) {
    for (const c of choices) body.append(el("tr", {}, el("td", {}, list), el("td", {}, c.name), el("td", {}, c.kind), el("td", {}, bytes(c.bytes))));
  }
  $("inspection").textContent = models.inspectionText;
  const fast = $("fastProblems");
  fast.replaceChildren();
  if (models.verify) {
    if (models.verify.problems.length === 0) fast.append(el("p", { class: "ok" }, "no problems (" + models.verify.filesChecked + " files checked)"));
    for (const p of models.verify.problems) fast.append(el("p", { class: "problem" }, p.kind + " · " + p.path + ": " + p.message));
  } else {
    fast.append(el("p", { class: "muted" }, "—"));
  }
  for (const note of models.notes) fast.append(el("p", { class: "muted" }, note));
  $("verify").disabled = !models.verify;
  $("verifyNote").textContent = models.verify ? "" : models.verifyNote;
}

function showVerifyStatus(status) {
  const box = $("verifyProgress");
  box.textContent = describe(status);
  if (status.state === "done" && status.verify) {
    box.replaceChildren(el("p", { class: status.verify.problems.length ? "problem" : "ok" },
      status.verify.problems.length ? status.verify.problems.length + " problem(s):" : "all well: " + status.verify.filesChecked + " files, " + bytes(status.verify.bytesHashed) + " hashed"));
    for (const p of status.verify.problems) box.append(el("p", { class: "problem" }, p.kind + " · " + p.path + ": " + p.message));
  }
}
$("verify").addEventListener("click", async () => {
  try { followJob(await api("/api/verify", { method: "POST" })); } catch (error) { $("verifyProgress").textContent = error.message; }
});
$("modelsRefresh").addEventListener("click", () => loadModels().catch((e) => { $("verifyNote").textContent = e.message; }));

// ---- start
(async () => {
  try {
    await loadModels();
    setForm(models.defaults);
    applySizeRule();
    await loadRuns();
    if (runs.length) playRun(runs[0].id);
    const jobs = await api("/api/jobs");
    for (const job of jobs.jobs.reverse()) if (job.state === "queued" || job.state === "running") followJob(job);
  } catch (error) { showFormError(error.message); }
})();
